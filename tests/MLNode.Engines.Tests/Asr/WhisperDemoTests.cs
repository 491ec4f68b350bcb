using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Engines.Asr;
using MLNode.Engines.Asr.Whisper;
using MLNode.Engines.Demo;
using MLNode.Engines.Hosting;
using MLNode.Engines.Llm.Sampling;
using MLNode.Runtime.Registry;
using MLNode.Runtime.Torch;

namespace MLNode.Engines.Tests.Asr;

/// <summary>
/// The built-in demo Whisper generated and loaded as the worker does (registry entry → files → <see cref="WhisperEngine"/>):
/// HF tokenizer.json, lang_to_id / task_to_id / suppression lists from generation_config.json, 80 mel bins.
/// </summary>
public sealed class WhisperDemoTests : IAsyncLifetime
{
    private readonly string _folder = Path.Combine(Directory.CreateTempSubdirectory("mlnode-demo-whisper-").FullName, "model");
    private ISpeechExecutor _executor = null!;

    public async ValueTask InitializeAsync()
    {
        var registry = ModelRegistry.Load(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "models.json"));
        var entry = registry.Models.Single(m => m.Id == "mlnode/demo-whisper");
        DemoModels.Write(entry.Id, entry.Architecture, _folder);
        var engine = new WhisperEngine(TorchRuntime.Initialize(null, NullLogger.Instance), NullLoggerFactory.Instance);
        Assert.True(engine.Supports(Modality.Asr, "whisper"));
        Assert.False(engine.Supports(Modality.Llm, "whisper"));
        _executor = Assert.IsType<WhisperExecutor>(await engine.LoadAsync(new ModelLoadRequest(entry, _folder, new EngineArgs()), TestContext.Current.CancellationToken));
    }

    public async ValueTask DisposeAsync()
    {
        await _executor.DisposeAsync();
        Directory.Delete(Path.GetDirectoryName(_folder)!, recursive: true);
    }

    [Fact]
    public void Capabilities_come_from_the_vocabulary()
    {
        Assert.Equal(new SpeechCapabilities(30.0, true, true, WhisperLanguages.Codes), _executor.Speech with { Languages = WhisperLanguages.Codes });
        Assert.Equal(WhisperLanguages.Codes, _executor.Speech.Languages);
        Assert.Equal(Modality.Asr, _executor.Card.Modality);
        Assert.Equal(448, _executor.Card.Limits.MaxModelLen);
        Assert.Null(_executor.Poc);
    }

    [Fact]
    public async Task A_long_file_transcribes_in_planned_windows_and_replays_exactly()
    {
        var ct = TestContext.Current.CancellationToken;
        var audio = TinyWhisper.Audio("speech_long_16k");
        var windows = _executor.PlanWindows(audio);
        Assert.Equal(3, windows.Count);
        var sampling = new SamplingParams(Temperature: 0, TopLogprobs: 3);
        var job = new SpeechJob(audio, windows, SpeechTask.Transcribe, null, "Context.", sampling, Timestamps: true, MaxTokensPerWindow: 20);
        var result = await _executor.TranscribeAsync(job, null, ct);

        Assert.Contains(result.Language, WhisperLanguages.Codes);
        var generation = WhisperConfig.FromDirectory(_folder);
        foreach (var window in result.Windows)
        {
            Assert.NotEmpty(window.Tokens);
            Assert.DoesNotContain(window.Tokens, t => generation.SuppressTokens.Contains(t.Token));
            Assert.Equal(_executor.Decode(window.Tokens.Select(t => t.Token).ToArray()), window.Text);
        }
        var replay = await _executor.TranscribeAsync(
            job with { Language = result.Language, Enforced = result.Windows.Select(w => new EnforcedWindow(w.Tokens.Select(t => t.Token).ToArray(), w.Temperature)).ToArray() },
            null, ct);
        Assert.Equal(result.Windows.SelectMany(w => w.Tokens), replay.Windows.SelectMany(w => w.Tokens),
            (a, b) => a.Token == b.Token && a.Logprob == b.Logprob && a.Top.SequenceEqual(b.Top));
    }

    [Fact]
    public async Task Translation_decodes_and_its_first_token_is_never_blank()
    {
        var ct = TestContext.Current.CancellationToken;
        var audio = TinyWhisper.Audio("speech_de_16k");
        var result = await _executor.TranscribeAsync(new SpeechJob(audio, _executor.PlanWindows(audio), SpeechTask.Translate, "de", null,
            new SamplingParams(Temperature: 0), MaxTokensPerWindow: 6), null, ct);
        var first = result.Windows[0].Tokens[0].Token;
        Assert.NotEqual(0x20, first);
        Assert.Equal("de", result.Language);
    }
}

using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Engines.Asr;
using MLNode.Engines.Asr.Audio;
using MLNode.Engines.Asr.Qwen3Asr;
using MLNode.Engines.Hosting;
using MLNode.Engines.Llm.Sampling;
using MLNode.Engines.Llm.Tokenization;
using MLNode.Runtime.Checkpoints;
using MLNode.Runtime.Registry;
using MLNode.Runtime.Torch;
using MLNode.Tests;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Asr;

/// <summary>
/// The factory path: qwen3-asr-tiny in a model folder with a Qwen3-ASR-style tokenizer (vocab.json + merges.txt, the
/// special tokens in tokenizer_config.json) and preprocessor_config.json, loaded as the worker loads a registry entry.
/// </summary>
public sealed class Qwen3AsrEngineTests : IDisposable
{
    // Special tokens at ids of the tiny vocabulary; the audio ones where the config puts them.
    private const int EndOfText = 580, ImStart = 581, ImEnd = 582, AsrText = 583, AudioPad = 590, AudioStart = 591, AudioEnd = 592;

    private readonly string _folder = Directory.CreateTempSubdirectory("qwen3-asr-engine").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public Qwen3AsrEngineTests()
    {
        foreach (var file in new[] { "config.json", "generation_config.json", "model.safetensors" })
            File.Copy(Path.Combine(Qwen3AsrTiny.Folder, file), Path.Combine(_folder, file));
        // A byte-level vocabulary without merges: byte b is token b, so every text id below is its byte.
        var vocab = new JsonObject();
        for (var b = 0; b < 256; b++) vocab[ByteLevelAlphabet.ToChar((byte)b).ToString()] = b;
        File.WriteAllText(Path.Combine(_folder, "vocab.json"), vocab.ToJsonString());
        File.WriteAllText(Path.Combine(_folder, "merges.txt"), "#version: 0.2\n");
        var added = new JsonObject();
        foreach (var (id, content) in new[] { (EndOfText, "<|endoftext|>"), (ImStart, "<|im_start|>"), (ImEnd, "<|im_end|>"), (AsrText, "<asr_text>"),
                     (AudioPad, "<|audio_pad|>"), (AudioStart, "<|audio_start|>"), (AudioEnd, "<|audio_end|>") })
            added[id.ToString(System.Globalization.CultureInfo.InvariantCulture)] = new JsonObject { ["content"] = content, ["special"] = true };
        File.WriteAllText(Path.Combine(_folder, "tokenizer_config.json"), new JsonObject { ["added_tokens_decoder"] = added, ["eos_token"] = "<|im_end|>" }.ToJsonString());
        File.WriteAllText(Path.Combine(_folder, "preprocessor_config.json"), """{"feature_size": 128, "sampling_rate": 16000, "hop_length": 160, "chunk_length": 20}""");
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private async Task<Qwen3AsrExecutor> Load()
    {
        var entry = new ModelEntry
        {
            Id = "test/qwen3-asr-tiny", Modality = Modality.Asr, Architecture = "qwen3_asr", Dtype = "float32", Limits = new ModelLimits(256, 2),
        };
        var engine = new Qwen3AsrEngine(TorchRuntime.Initialize(null, NullLogger.Instance), NullLoggerFactory.Instance);
        Assert.True(engine.Supports(Modality.Asr, "qwen3_asr"));
        Assert.False(engine.Supports(Modality.Llm, "qwen3_asr"));
        return Assert.IsType<Qwen3AsrExecutor>(await engine.LoadAsync(new ModelLoadRequest(entry, _folder, new EngineArgs()), Ct));
    }

    [Fact]
    public async Task Loads_every_weight_and_reads_window_and_stop_tokens_from_the_folder()
    {
        await using var executor = await Load();
        using var checkpoint = Checkpoint.Open(_folder);
        Assert.Equal(checkpoint.TensorNames.Sum(name => checkpoint.GetInfo(name).Shape.Aggregate(1L, (a, b) => a * b)), executor.Card.ParameterCount);
        Assert.Equal(Modality.Asr, executor.Card.Modality);
        Assert.Equal((20.0, false, false), (executor.Speech.WindowSeconds, executor.Speech.Translation, executor.Speech.Timestamps));
        Assert.Contains(ImEnd, executor.StopTokens);
    }

    [Fact]
    public async Task Prompt_comes_from_the_tokenizer_with_the_forced_language_and_decoding_starts_where_the_model_says()
    {
        await using var executor = await Load();
        var samples = WavSamples.Read(Fixtures.Path("audio", "speech_en_16k.wav"));
        var job = new SpeechJob(new CanonicalAudio(samples, ""), [new AudioWindow(0, samples.Length)], SpeechTask.Transcribe, "en", Prompt: null,
            new SamplingParams(Temperature: 0, TopLogprobs: 5), MaxTokensPerWindow: 3);
        var result = await executor.TranscribeAsync(job, null, Ct);
        Assert.Equal("en", result.Language);

        // The prompt written out by hand: special tokens by id, every other character its byte.
        static IEnumerable<int> Text(string s) => Encoding.UTF8.GetBytes(s).Select(b => (int)b);
        int[] prompt = [ImStart, .. Text("user\n"), AudioStart, .. Enumerable.Repeat(AudioPad, 84), AudioEnd,
            ImEnd, .. Text("\n"), ImStart, .. Text("assistant\n"), .. Text("language English"), AsrText];
        using var scope = NewDisposeScope();
        var mel = new LogMelSpectrogram(128).Window(samples, padTo: null, CPU);
        var logprobs = executor.Model.Logits([prompt], executor.Model.EncodeAudio([mel]))[0, -1].log_softmax(-1);
        var first = result.Windows[0].Tokens[0];
        Assert.Equal(logprobs.argmax().item<long>(), first.Token);
        // One forward over the prompt against the executor's prefill: same math, other batch shapes.
        Assert.True(Math.Abs(logprobs[first.Token].item<float>() - first.Logprob) <= 1e-5);
    }

    [Fact]
    public async Task A_folder_without_a_tokenizer_is_refused_by_name()
    {
        File.Delete(Path.Combine(_folder, "vocab.json"));
        var e = await Assert.ThrowsAsync<ModelLoadException>(Load);
        Assert.Contains("tokenizer", e.Message);
    }
}

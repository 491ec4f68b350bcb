using Microsoft.Extensions.Logging;
using MLNode.Engines.Asr.Audio;
using MLNode.Engines.Hosting;
using MLNode.Engines.Llm.Sampling;
using static TorchSharp.torch;

namespace MLNode.Engines.Asr.Whisper;

/// <summary>A loaded Whisper; the same instance transcribes, translates and replays a validator's jobs.</summary>
public sealed class WhisperExecutor : ISpeechExecutor
{
    private readonly WhisperTranscriber _transcriber;
    private readonly AudioWindowPlanner _planner;

    private WhisperExecutor(ModelCard card, WhisperForConditionalGeneration model, WhisperTokenizer tokenizer, WhisperTranscriber transcriber)
    {
        (Card, Model, Tokenizer, _transcriber) = (card, model, tokenizer, transcriber);
        var special = tokenizer.Special;
        Speech = new SpeechCapabilities(
            WindowSeconds: transcriber.WindowSamples / (double)CanonicalAudio.SampleRate,
            Translation: special.IsMultilingual && special.Translate is not null,
            Timestamps: special.HasTimestamps,
            Languages: special.IsMultilingual ? special.Languages.Select(l => l.Code).ToArray() : ["en"]);
        _planner = new AudioWindowPlanner(Speech.WindowSeconds);
    }

    /// <summary>An executor over a loaded model that decodes up to <paramref name="slots"/> windows together on <paramref name="device"/>.</summary>
    public static WhisperExecutor Create(ModelCard card, WhisperForConditionalGeneration model, WhisperTokenizer tokenizer, int slots, Device device, ILogger logger) =>
        new(card, model, tokenizer, new WhisperTranscriber(model, tokenizer, slots, device, logger));

    public ModelCard Card { get; }
    public WhisperForConditionalGeneration Model { get; }
    public WhisperTokenizer Tokenizer { get; }
    public IPocProver? Poc => null;
    public SpeechCapabilities Speech { get; }

    /// <summary>Windows of at most 30 s, cut at the quietest 100 ms of each window's last second (the shared planner).</summary>
    public IReadOnlyList<AudioWindow> PlanWindows(CanonicalAudio audio) => _planner.Plan(audio.Samples);

    public string Decode(IReadOnlyList<int> tokens) => Tokenizer.Decode(tokens);

    public Task<SpeechResult> TranscribeAsync(SpeechJob job, Action<int, TokenLogprob>? onToken, CancellationToken ct) =>
        _transcriber.TranscribeAsync(job, onToken, ct);

    public async ValueTask DisposeAsync()
    {
        await _transcriber.DisposeAsync();
        Model.Dispose();
    }
}

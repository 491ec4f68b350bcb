using MLNode.Engines.Hosting;
using MLNode.Engines.Llm.Sampling;

namespace MLNode.Engines.Asr.Whisper;

/// <summary>A loaded Whisper; the same instance transcribes, translates and replays a validator's jobs.</summary>
public sealed class WhisperExecutor : ISpeechExecutor
{
    private readonly WhisperTranscriber _transcriber;

    internal WhisperExecutor(ModelCard card, WhisperForConditionalGeneration model, WhisperTokenizer tokenizer, WhisperTranscriber transcriber)
    {
        (Card, Model, Tokenizer, _transcriber) = (card, model, tokenizer, transcriber);
        var special = tokenizer.Special;
        Speech = new SpeechCapabilities(
            WindowSeconds: transcriber.WindowSamples / (double)CanonicalAudio.SampleRate,
            Translation: special.IsMultilingual && special.Translate is not null,
            Timestamps: special.HasTimestamps,
            Languages: special.IsMultilingual ? special.Languages.Select(l => l.Code).ToArray() : ["en"]);
    }

    public ModelCard Card { get; }
    public WhisperForConditionalGeneration Model { get; }
    public WhisperTokenizer Tokenizer { get; }
    public IPocProver? Poc => null;
    public SpeechCapabilities Speech { get; }

    /// <summary>
    /// Consecutive windows of at most 30 s from the start of the audio. The shared window planner (quietest point
    /// near each boundary) replaces this split once it is in the tree.
    /// </summary>
    public IReadOnlyList<AudioWindow> PlanWindows(CanonicalAudio audio)
    {
        var length = _transcriber.WindowSamples;
        var windows = new List<AudioWindow>();
        for (var start = 0; start < audio.Samples.Length; start += length)
            windows.Add(new AudioWindow(start, Math.Min(audio.Samples.Length, start + length)));
        return windows;
    }

    public string Decode(IReadOnlyList<int> tokens) => Tokenizer.Decode(tokens);

    public Task<SpeechResult> TranscribeAsync(SpeechJob job, Action<int, TokenLogprob>? onToken, CancellationToken ct) =>
        _transcriber.TranscribeAsync(job, onToken, ct);

    public ValueTask DisposeAsync()
    {
        _transcriber.Dispose();
        Model.Dispose();
        return ValueTask.CompletedTask;
    }
}

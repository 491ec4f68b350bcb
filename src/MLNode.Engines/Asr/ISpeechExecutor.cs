using MLNode.Engines.Hosting;
using MLNode.Engines.Llm.Sampling;

namespace MLNode.Engines.Asr;

public enum SpeechTask { Transcribe, Translate }

/// <summary>
/// The audio every engine and every role sees: 16 kHz mono float32 PCM decoded from the upload with pinned
/// FFmpeg options. <see cref="Sha256"/> (over the little-endian float32 samples) is the audio's identity: a
/// validator checks it before replaying, because the container bytes may differ for the same sound.
/// </summary>
public sealed record CanonicalAudio(float[] Samples, string Sha256)
{
    public const int SampleRate = 16000;

    public double Seconds => Samples.Length / (double)SampleRate;
}

/// <summary>One decoding window of the canonical audio: samples [<see cref="Start"/>, <see cref="End"/>).</summary>
public sealed record AudioWindow(int Start, int End)
{
    public int Length => End - Start;
    public double StartSeconds => Start / (double)CanonicalAudio.SampleRate;
    public double EndSeconds => End / (double)CanonicalAudio.SampleRate;
}

/// <summary>
/// What a validator replays for one window: the executor's emitted tokens (without the final end token, which the
/// engine appends as chat replay appends EOS) and the temperature the executor decoded that window at.
/// </summary>
public sealed record EnforcedWindow(IReadOnlyList<int> Tokens, double Temperature);

/// <summary>
/// One transcription or translation. The windows are decided before decoding (by <see cref="ISpeechExecutor.PlanWindows"/>,
/// or taken from the executor's response on replay) and decoded independently, so executor and validator feed
/// the model the same samples. <see cref="Language"/> null asks the engine to detect it (once, on the first window).
/// <see cref="Sampling"/>'s temperature is the first of the fallback ladder when <see cref="TemperatureFallback"/> is set.
/// </summary>
public sealed record SpeechJob(
    CanonicalAudio Audio,
    IReadOnlyList<AudioWindow> Windows,
    SpeechTask Task,
    string? Language,
    string? Prompt,
    SamplingParams Sampling,
    bool Timestamps = false,
    bool TemperatureFallback = false,
    int? MaxTokensPerWindow = null,
    IReadOnlyList<EnforcedWindow>? Enforced = null);

/// <summary>A timed stretch of text: seconds from the start of the audio (not of the window).</summary>
public sealed record SpeechSegment(double Start, double End, string Text, IReadOnlyList<int> Tokens);

/// <summary>
/// The decoded result of one window. <see cref="Tokens"/> are the emitted tokens with their logprobs, without the
/// final end token; <see cref="Segments"/> are timestamp pairs when timestamps were asked for, else one segment
/// spanning the window. <see cref="NoSpeechProb"/> is null for engines that have no such estimate.
/// </summary>
public sealed record WindowResult(
    AudioWindow Window,
    double Temperature,
    IReadOnlyList<TokenLogprob> Tokens,
    string Text,
    IReadOnlyList<SpeechSegment> Segments,
    double AvgLogprob,
    double CompressionRatio,
    double? NoSpeechProb);

/// <summary>The whole job: the language used (ISO 639-1 code) and one result per window, in order.</summary>
public sealed record SpeechResult(string Language, IReadOnlyList<WindowResult> Windows);

/// <summary>What a speech model can do, for request validation before any decoding starts.</summary>
public sealed record SpeechCapabilities(
    double WindowSeconds,
    bool Translation,
    bool Timestamps,
    IReadOnlyList<string> Languages);

/// <summary>
/// A loaded speech-to-text model (Whisper, Qwen3-ASR). Windows of one job are decoded as a batch; a job
/// with <see cref="SpeechJob.Enforced"/> teacher-forces each window's tokens and returns this model's logprobs
/// for them, which the chat replay comparison then judges unchanged.
/// </summary>
public interface ISpeechExecutor : IModelExecutor
{
    SpeechCapabilities Speech { get; }

    /// <summary>The windows a job over <paramref name="audio"/> decodes, decided once from the samples alone.</summary>
    IReadOnlyList<AudioWindow> PlanWindows(CanonicalAudio audio);

    /// <summary>Text of <paramref name="tokens"/> with special tokens removed (for stream deltas and formats).</summary>
    string Decode(IReadOnlyList<int> tokens);

    /// <param name="onToken">called with (window index, token) as each token is decoded, for streaming; may be null.</param>
    Task<SpeechResult> TranscribeAsync(SpeechJob job, Action<int, TokenLogprob>? onToken, CancellationToken ct);
}

/// <summary>
/// A job this model cannot take (a language it does not know, enforced tokens outside its vocabulary or context,
/// a prompt too long): the caller's fault, answered with a 400 naming <see cref="Field"/>, a request-form field.
/// </summary>
public sealed class SpeechJobException(string field, string message) : Exception(message)
{
    public string Field { get; } = field;
}

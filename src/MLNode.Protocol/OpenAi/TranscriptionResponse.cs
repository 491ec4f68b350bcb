using System.Text.Json.Serialization;

namespace MLNode.Protocol.OpenAi;

/// <summary>
/// <c>/v1/audio/transcriptions</c> and <c>/v1/audio/translations</c> with <c>response_format=json</c>: vLLM's
/// <c>{"text", "usage"}</c> plus what the network needs to price and replay it — the canonical audio's hash, the
/// windows as decoded, the language used, and (when asked) the flat logprobs of all windows in the chat wire format.
/// </summary>
public sealed record TranscriptionResponse(
    string Text,
    TranscriptionUsage Usage,
    string Language,
    string AudioSha256,
    IReadOnlyList<TranscriptionWindow> Windows,
    IReadOnlyList<ChatCompletionLogprob>? Logprobs);

/// <summary><c>response_format=verbose_json</c>: OpenAI's shape (timed segments, duration in seconds) plus the same extensions.</summary>
public sealed record VerboseTranscriptionResponse(
    string Task,
    string Language,
    double Duration,
    string Text,
    IReadOnlyList<TranscriptionSegment> Segments,
    TranscriptionUsage Usage,
    string AudioSha256,
    IReadOnlyList<TranscriptionWindow> Windows,
    IReadOnlyList<ChatCompletionLogprob>? Logprobs);

/// <summary>
/// A timed segment as openai-whisper reports it: <c>seek</c> is its window's start in 10 ms mel frames; temperature,
/// avg_logprob, compression_ratio and no_speech_prob are those of the window it was decoded in.
/// </summary>
public sealed record TranscriptionSegment(
    int Id,
    int Seek,
    double Start,
    double End,
    string Text,
    IReadOnlyList<int> Tokens,
    double Temperature,
    double AvgLogprob,
    double CompressionRatio,
    double? NoSpeechProb);

/// <summary>
/// One decoding window as the executor decoded it: samples [start_sample, end_sample) of the canonical audio (start and
/// end in seconds for people), how many tokens it emitted (without its end token) and at which temperature. A replay
/// sends these back so the validator decodes the same samples and splits the enforced tokens the same way.
/// </summary>
public sealed record TranscriptionWindow(double Start, double End, int StartSample, int EndSample, int Tokens, double Temperature);

/// <summary>
/// vLLM's duration usage (<c>seconds</c> = ⌈duration⌉) plus <c>audio_tokens</c>, the network's billable token count
/// ⌈duration × tokens per second⌉ (50 per second in the proposal: one Whisper encoder position per 20 ms).
/// </summary>
public sealed record TranscriptionUsage(string Type, long Seconds, long AudioTokens)
{
    public const double DefaultTokensPerSecond = 50;

    public static TranscriptionUsage For(long samples, int sampleRate, double tokensPerSecond = DefaultTokensPerSecond) =>
        new("duration", (samples + sampleRate - 1) / sampleRate, (long)Math.Ceiling(samples * tokensPerSecond / sampleRate));
}

/// <summary>
/// One server-sent event of a streamed transcription, vLLM's <c>transcription.chunk</c>. The last chunk carries
/// <c>finish_reason</c>, the usage and the replay extensions (hash, windows, language).
/// </summary>
public sealed record TranscriptionChunk(
    string Id,
    long Created,
    string Model,
    IReadOnlyList<TranscriptionChunkChoice> Choices,
    TranscriptionUsage? Usage = null,
    string? Language = null,
    string? AudioSha256 = null,
    IReadOnlyList<TranscriptionWindow>? Windows = null,
    string Object = "transcription.chunk");

/// <summary><c>finish_reason</c> and <c>stop_reason</c> are written even while null, as vLLM writes them.</summary>
public sealed record TranscriptionChunkChoice(
    TranscriptionDelta Delta,
    ChatLogprobs? Logprobs = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? FinishReason = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? StopReason = null);

public sealed record TranscriptionDelta(string Content);

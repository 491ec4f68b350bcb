using System.Text.Json;
using System.Text.Json.Serialization;
using MLNode.Protocol.Management;

namespace MLNode.Protocol.OpenAi;

/// <summary>
/// The sampling fields /v1/chat/completions and /v1/completions share, with vLLM's ranges
/// (<c>SamplingParams._verify_args</c> and the request validators). Unset fields are null so the engine can
/// fall back to the model's generation config, as vLLM does.
/// </summary>
public abstract record SamplingRequest : IValidatedRequest
{
    /// <summary>vLLM serves each request as one sequence here: Gonka never asks for more.</summary>
    public const int SupportedN = 1;

    /// <summary>vLLM's server cap on logprobs per position (<c>ModelConfig.max_logprobs</c>).</summary>
    public const int MaxLogprobs = 20;

    public string? Model { get; init; }

    public int? MaxTokens { get; init; }

    public double? Temperature { get; init; }

    public double? TopP { get; init; }

    /// <summary>−1 and 0 both disable top-k (vLLM accepts the older −1 quietly).</summary>
    public int? TopK { get; init; }

    public double? MinP { get; init; }

    public long? Seed { get; init; }

    [JsonConverter(typeof(StopSequencesConverter))]
    public IReadOnlyList<string>? Stop { get; init; }

    public int? N { get; init; }

    public bool? Stream { get; init; }

    public StreamOptions? StreamOptions { get; init; }

    public double? PresencePenalty { get; init; }

    public double? FrequencyPenalty { get; init; }

    public double? RepetitionPenalty { get; init; }

    /// <summary><see cref="OpenAi.LogprobsMode.Raw"/> or <see cref="OpenAi.LogprobsMode.Processed"/>; dapi sets it from chain params.</summary>
    public string? LogprobsMode { get; init; }

    public bool SkipSpecialTokens { get; init; } = true;

    public bool? ReturnTokenIds { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool IgnoreEos { get; init; }

    /// <summary>
    /// Fields this worker does not interpret. vLLM ignores them too; they are kept so that a body read here and
    /// sent on (a validator replay) still carries them.
    /// </summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? OtherFields { get; init; }

    public virtual IEnumerable<FieldError> Validate()
    {
        if (MaxTokens < 1)
            yield return new FieldError("body.max_tokens", "must be ≥ 1");
        if (Temperature is { } temperature && !(temperature >= 0 && double.IsFinite(temperature)))
            yield return new FieldError("body.temperature", "must be a finite number ≥ 0");
        if (TopP is { } topP && !(topP is > 0 and <= 1))
            yield return new FieldError("body.top_p", "must be in (0, 1]");
        if (TopK < -1)
            yield return new FieldError("body.top_k", "must be 0 or −1 (disabled), or at least 1");
        if (MinP is { } minP && !(minP is >= 0 and <= 1))
            yield return new FieldError("body.min_p", "must be in [0, 1]");
        if (N is { } n && n != SupportedN)
            yield return new FieldError("body.n", $"must be {SupportedN}: one sequence per request is served");
        if (StreamOptions is not null && Stream != true)
            yield return new FieldError("body.stream_options", "can only be given when stream is true");
        if (PresencePenalty is { } presence && !(presence is >= -2 and <= 2))
            yield return new FieldError("body.presence_penalty", "must be in [−2, 2]");
        if (FrequencyPenalty is { } frequency && !(frequency is >= -2 and <= 2))
            yield return new FieldError("body.frequency_penalty", "must be in [−2, 2]");
        if (RepetitionPenalty is { } repetition && !(repetition > 0 && double.IsFinite(repetition)))
            yield return new FieldError("body.repetition_penalty", "must be a finite number > 0");
        if (LogprobsMode is { } mode && !OpenAi.LogprobsMode.All.Contains(mode))
            yield return new FieldError("body.logprobs_mode", $"'{mode}' is not one of {string.Join(", ", OpenAi.LogprobsMode.All)}");
        if (Stop?.Any(string.IsNullOrEmpty) == true)
            yield return new FieldError("body.stop", "stop sequences must be non-empty strings");
    }
}

public sealed record StreamOptions(bool? IncludeUsage = null);

/// <summary>Which logprobs the engine reports: before (raw) or after (processed) temperature, penalties, top-k/p.</summary>
public static class LogprobsMode
{
    public const string Raw = "raw_logprobs";

    /// <summary>Masked entries are −inf (−9999 on the wire) and empty top-k slots are padded with ids 0–3.</summary>
    public const string Processed = "processed_logprobs";

    public static readonly IReadOnlyList<string> All = [Raw, Processed];
}

/// <summary><c>stop</c> is a string or an array of strings; both read as a list.</summary>
internal sealed class StopSequencesConverter : JsonConverter<IReadOnlyList<string>>
{
    public override IReadOnlyList<string> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType == JsonTokenType.String
            ? [reader.GetString()!]
            : JsonSerializer.Deserialize<List<string>>(ref reader, options) ?? throw new JsonException("stop must be a string or an array of strings");

    public override void Write(Utf8JsonWriter writer, IReadOnlyList<string> value, JsonSerializerOptions options) =>
        JsonSerializer.Serialize(writer, value, options);
}

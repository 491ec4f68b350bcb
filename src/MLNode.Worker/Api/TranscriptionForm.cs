using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using MLNode.Protocol;
using MLNode.Protocol.Management;
using MLNode.Protocol.OpenAi;

namespace MLNode.Worker.Api;

/// <summary>The <c>response_format</c> values of OpenAI's audio API.</summary>
public static class TranscriptFormat
{
    public const string Json = "json";
    public const string Text = "text";
    public const string Srt = "srt";
    public const string Vtt = "vtt";
    public const string VerboseJson = "verbose_json";

    public static readonly IReadOnlyList<string> All = [Json, Text, Srt, Vtt, VerboseJson];

    /// <summary>Formats that carry segment times, so the model must produce timestamps.</summary>
    public static bool NeedsTimestamps(string format) => format is Srt or Vtt or VerboseJson;

    /// <summary>Formats that are JSON, so they can carry logprobs and the replay extensions.</summary>
    public static bool IsJson(string format) => format is Json or VerboseJson;
}

/// <summary>
/// A <c>/v1/audio/transcriptions</c> or <c>/v1/audio/translations</c> multipart form, read strictly: every field that
/// is present must parse and fit the others, or the request gets a 422 naming it. Checks that need the model or the
/// decoded audio happen in the endpoint. Fields this worker does not know are ignored, as vLLM ignores them.
/// </summary>
public sealed partial record TranscriptionForm(
    IFormFile File,
    string? Model,
    string? Language,
    string? Prompt,
    string ResponseFormat,
    double Temperature,
    bool Stream,
    bool Logprobs,
    int TopLogprobs,
    long? Seed,
    string? LogprobsMode,
    EnforcedTokenList? EnforcedTokens,
    IReadOnlyList<TranscriptionWindow>? Windows,
    string? AudioSha256)
{
    public const string FileField = "file";
    public const string AudioSha256Field = "audio_sha256";
    private const string GranularitiesField = "timestamp_granularities[]";

    public static (TranscriptionForm? Form, IReadOnlyList<FieldError> Errors) Read(IFormCollection form)
    {
        var fields = new FieldReader(form);
        var file = form.Files.GetFile(FileField);
        if (file is null)
            fields.Error(FileField, form.ContainsKey(FileField) ? "must be an uploaded file, not a text field" : "Field required");

        var responseFormat = fields.String("response_format") ?? TranscriptFormat.Json;
        if (!TranscriptFormat.All.Contains(responseFormat))
            fields.Error("response_format", $"'{responseFormat}' is not one of {string.Join(", ", TranscriptFormat.All)}");

        var language = fields.String("language")?.ToLowerInvariant();
        if (language is not null && !LanguageCode().IsMatch(language))
            fields.Error("language", $"'{language}' is not an ISO 639 language code such as 'en'");

        var temperature = fields.Double("temperature") ?? 0.0;
        if (!(temperature >= 0))
            fields.Error("temperature", "must be a finite number ≥ 0");

        var granularities = fields.List(GranularitiesField, "timestamp_granularities");
        foreach (var granularity in granularities)
        {
            if (granularity == "word")
                fields.Error(GranularitiesField, "word timestamps are not supported; ask for 'segment'");
            else if (granularity != "segment")
                fields.Error(GranularitiesField, $"'{granularity}' is not one of word, segment");
        }
        if (granularities.Count > 0 && responseFormat != TranscriptFormat.VerboseJson)
            fields.Error(GranularitiesField, "timestamp granularities need response_format verbose_json");

        var stream = fields.Bool("stream") ?? false;
        if (stream && responseFormat is not (TranscriptFormat.Json or TranscriptFormat.Text))
            fields.Error("stream", $"streaming is not supported with response_format {responseFormat}; use json or text");

        var logprobs = fields.Bool("logprobs") ?? false;
        var topLogprobs = fields.Int("top_logprobs");
        if (topLogprobs is < 0 or > SamplingRequest.MaxLogprobs)
            fields.Error("top_logprobs", $"must be in [0, {SamplingRequest.MaxLogprobs}]");
        if (topLogprobs is not null && !logprobs)
            fields.Error("top_logprobs", "needs logprobs=true");
        if (logprobs && !TranscriptFormat.IsJson(responseFormat) && !stream)
            fields.Error("logprobs", $"logprobs are returned in JSON only; use response_format json or verbose_json, not {responseFormat}");

        var logprobsMode = fields.String("logprobs_mode");
        if (logprobsMode is not null && !Protocol.OpenAi.LogprobsMode.All.Contains(logprobsMode))
            fields.Error("logprobs_mode", $"'{logprobsMode}' is not one of {string.Join(", ", Protocol.OpenAi.LogprobsMode.All)}");

        var audioSha256 = fields.String(AudioSha256Field);
        if (audioSha256 is not null && !Sha256Hex().IsMatch(audioSha256))
            fields.Error(AudioSha256Field, "must be 64 lower-case hexadecimal digits (the SHA-256 of the canonical audio)");

        var enforced = fields.Json<EnforcedTokenList>("enforced_tokens");
        var windows = fields.Json<List<TranscriptionWindow>>("windows");
        if (enforced is not null && windows is null && !form.ContainsKey("windows"))
            fields.Error("windows", "Field required with enforced_tokens: the windows recorded in the response being replayed");
        if (windows is { Count: 0 })
            fields.Error("windows", "must hold at least one window");
        if (enforced is not null && windows is { Count: > 0 } && windows.Sum(w => (long)w.Tokens) != enforced.Tokens.Count)
            fields.Error("windows", $"the windows' token counts add up to {windows.Sum(w => (long)w.Tokens)}, but enforced_tokens has {enforced.Tokens.Count}");

        var seed = fields.Long("seed");
        var model = fields.String("model");
        var prompt = fields.String("prompt");

        if (fields.Errors.Count > 0 || file is null)
            return (null, fields.Errors);
        return (new TranscriptionForm(file, model, language, string.IsNullOrEmpty(prompt) ? null : prompt, responseFormat, temperature,
            stream, logprobs, logprobs ? topLogprobs ?? 0 : 0, seed, logprobsMode, enforced, windows, audioSha256), []);
    }

    /// <summary>ISO 639-1 (two letters) or, for the few Whisper languages without one, 639-2/3 (three: "haw", "yue").</summary>
    [GeneratedRegex("^[a-z]{2,3}$")]
    private static partial Regex LanguageCode();

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Sha256Hex();

    /// <summary>Reads single form values with pydantic's parsing rules, collecting an error per bad field.</summary>
    private sealed class FieldReader(IFormCollection form)
    {
        private static readonly string[] True = ["true", "1", "yes", "on"];
        private static readonly string[] False = ["false", "0", "no", "off"];

        public List<FieldError> Errors { get; } = [];

        public void Error(string field, string message) => Errors.Add(new FieldError($"body.{field}", message));

        public string? String(string field)
        {
            if (!form.TryGetValue(field, out var values)) return null;
            if (values.Count > 1)
            {
                Error(field, "given more than once");
                return null;
            }
            return values[0];
        }

        public IReadOnlyList<string> List(params string[] names) =>
            [.. names.SelectMany(name => form.TryGetValue(name, out var values) ? values.Where(v => v is not null).Select(v => v!) : [])];

        public bool? Bool(string field) => String(field) is not { } text ? null
            : True.Contains(text, StringComparer.OrdinalIgnoreCase) ? true
            : False.Contains(text, StringComparer.OrdinalIgnoreCase) ? false
            : Invalid<bool>(field, text, "true or false");

        public double? Double(string field) => String(field) is not { } text ? null
            : double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value) ? value
            : Invalid<double>(field, text, "a finite number");

        public int? Int(string field) => String(field) is not { } text ? null
            : int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) ? value
            : Invalid<int>(field, text, "an integer");

        public long? Long(string field) => String(field) is not { } text ? null
            : long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) ? value
            : Invalid<long>(field, text, "an integer");

        /// <summary>A field holding a JSON document (the replay's enforced_tokens and windows), read strictly.</summary>
        public T? Json<T>(string field) where T : class
        {
            if (String(field) is not { } text) return null;
            try
            {
                var value = JsonSerializer.Deserialize<T>(text, GonkaJson.StrictOptions);
                if (value is null) Error(field, "must be a JSON value, not null");
                return value;
            }
            catch (JsonException e)
            {
                Errors.Add(RequestBody.Describe(e, $"body.{field}"));
                return null;
            }
        }

        private T? Invalid<T>(string field, string text, string expected) where T : struct
        {
            Error(field, $"'{text}' is not {expected}");
            return null;
        }
    }
}

namespace MLNode.Engines.Asr.Whisper;

/// <summary>
/// The control tokens of one Whisper vocabulary, found by name (their ids move between model generations: v3 has
/// one more language, so everything after the languages shifts by one). Optional tokens are null when the vocabulary
/// lacks them: English-only models take no language or task, and old HF tokenizers list no timestamp tokens.
/// </summary>
public sealed record WhisperSpecialTokens(
    int EndOfText,
    int StartOfTranscript,
    IReadOnlyList<(string Code, int Id)> Languages,
    int? Transcribe,
    int? Translate,
    int? StartOfPrevious,
    int? NoSpeech,
    int? NoTimestamps,
    int? TimestampBegin)
{
    /// <summary>Timestamp tokens step in 20 ms: two encoder positions of 10 ms mel frames.</summary>
    public const double SecondsPerTimestamp = 0.02;

    public bool IsMultilingual => Languages.Count > 0 && Transcribe is not null;

    public bool HasTimestamps => TimestampBegin is not null && NoTimestamps is not null;

    public bool IsTimestamp(int id) => id >= TimestampBegin;

    public int? LanguageToken(string code)
    {
        foreach (var language in Languages)
            if (language.Code == code) return language.Id;
        return null;
    }

    public string? LanguageCode(int id)
    {
        foreach (var language in Languages)
            if (language.Id == id) return language.Code;
        return null;
    }

    /// <summary>
    /// Looks the tokens up in <paramref name="tokenToId"/>, preferring the ids generation_config.json gives
    /// (lang_to_id, task_to_id, no_timestamps_token_id). Timestamps start at &lt;|0.00|&gt;, or — for tokenizers that
    /// do not list them — right after &lt;|notimestamps|&gt;, which is where transformers puts them too.
    /// </summary>
    public static WhisperSpecialTokens Find(Func<string, int?> tokenToId, WhisperConfig config)
    {
        int Required(string token) => tokenToId(token) ?? throw new InvalidDataException($"the Whisper vocabulary has no {token} token");

        var languages = config.LangToId is { } langToId
            ? langToId.OrderBy(entry => entry.Value).Select(entry => (Code: entry.Key.Trim('<', '|', '>'), Id: entry.Value)).ToList()
            : WhisperLanguages.Codes.Select(code => (Code: code, Id: tokenToId(WhisperLanguages.Token(code)))).Where(l => l.Id is not null).Select(l => (l.Code, l.Id!.Value)).ToList();
        // openai tells multilingual models by their vocabulary (51865 tokens or more) when the checkpoint does not say.
        if (!(config.IsMultilingual ?? config.VocabSize >= 51865)) languages = [];
        var noTimestamps = config.NoTimestampsTokenId ?? tokenToId("<|notimestamps|>");
        var timestampBegin = tokenToId("<|0.00|>") ?? (noTimestamps + 1 < config.VocabSize ? noTimestamps + 1 : null);
        return new WhisperSpecialTokens(
            EndOfText: Required("<|endoftext|>"),
            StartOfTranscript: Required("<|startoftranscript|>"),
            Languages: languages,
            Transcribe: Task(config, "transcribe") ?? tokenToId("<|transcribe|>"),
            Translate: Task(config, "translate") ?? tokenToId("<|translate|>"),
            StartOfPrevious: tokenToId("<|startofprev|>"),
            // HF tokenizers of the first models call it <|nocaptions|>; openai renamed it.
            NoSpeech: tokenToId("<|nospeech|>") ?? tokenToId("<|nocaptions|>"),
            NoTimestamps: noTimestamps,
            TimestampBegin: timestampBegin);
    }

    private static int? Task(WhisperConfig config, string task) => config.TaskToId is { } tasks && tasks.TryGetValue(task, out var id) ? id : null;
}

using MLNode.Engines.Llm.Tokenization;

namespace MLNode.Engines.Asr.Qwen3Asr;

/// <summary>The parsed output of one window: the transcript, and the language (ISO code) the model named or was given.</summary>
/// <param name="Language">null when the model named none it knows, or said "None" (no speech).</param>
/// <param name="TextTokens">the emitted tokens that make up <paramref name="Text"/> (those after the last &lt;asr_text&gt;).</param>
public sealed record Qwen3AsrTranscript(string? Language, string Text, IReadOnlyList<int> TextTokens, bool NoSpeech);

/// <summary>
/// Qwen3-ASR's prompt and output format (vLLM's <c>get_generation_prompt</c>, the qwen-asr SDK's prompt and
/// <c>parse_asr_output</c>):
/// <code>
///   [&lt;|im_start|&gt;system\n{context}&lt;|im_end|&gt;\n]                      only when a context is given
///   &lt;|im_start|&gt;user\n&lt;|audio_start|&gt;&lt;|audio_pad|&gt;×N&lt;|audio_end|&gt;&lt;|im_end|&gt;\n&lt;|im_start|&gt;assistant\n
///   [language English&lt;asr_text&gt;]                                  when the language is forced
/// output: language English&lt;asr_text&gt;{transcript}&lt;|im_end|&gt;           "language None" = no speech
/// </code>
/// Text is tokenized in pieces that meet only at special tokens, which is how the whole string tokenizes; the context
/// is user text and is tokenized with special tokens read as plain text, so it cannot open or close a turn.
/// </summary>
public sealed class Qwen3AsrChatFormat(
    Qwen3AsrChatFormat.SpecialTokens tokens,
    Func<string, bool, int[]> encode,
    Func<IEnumerable<int>, string> decode)
{
    /// <summary>The ids the format places or reads by id; <see cref="AudioPad"/> and <see cref="AudioStart"/> come from the config.</summary>
    public sealed record SpecialTokens(int AudioStart, int AudioPad, int AudioEnd, int AsrText, int EndOfTurn);

    public const string UserTurn = "<|im_start|>user\n";
    public const string AssistantTurn = "<|im_end|>\n<|im_start|>assistant\n";
    public const string SystemTurnOpen = "<|im_start|>system\n";
    public const string TurnClose = "<|im_end|>\n";
    private const string LanguagePrefix = "language ";

    public SpecialTokens Tokens { get; } = tokens;

    /// <summary>
    /// The format of a checkpoint's tokenizer: the placeholder ids of the config, the other special tokens by name, and a
    /// check that the tokenizer agrees with the config about the placeholders.
    /// </summary>
    public static Qwen3AsrChatFormat FromTokenizer(ByteLevelBpeTokenizer tokenizer, Qwen3AsrConfig config)
    {
        int Id(string token) => tokenizer.TokenToId(token) ?? throw new InvalidDataException($"the tokenizer has no token {token}, which Qwen3-ASR's prompt needs");
        foreach (var (name, id) in new[] { ("<|audio_pad|>", config.AudioTokenId), ("<|audio_start|>", config.AudioStartTokenId) })
            if (tokenizer.TokenToId(name) is { } known && known != id)
                throw new InvalidDataException($"the tokenizer's {name} is {known}, the config says {id}");
        var special = new SpecialTokens(config.AudioStartTokenId, config.AudioTokenId, Id("<|audio_end|>"), Id("<asr_text>"), Id("<|im_end|>"));
        return new Qwen3AsrChatFormat(special, tokenizer.Encode, ids => tokenizer.Decode(ids, skipSpecialTokens: true));
    }

    /// <summary>Prompt ids for a window of <paramref name="audioTokens"/> encoder outputs.</summary>
    /// <param name="context">the request's prompt, placed in a system turn when not blank.</param>
    /// <param name="languageName">the forced language as the model names it (e.g. "English"), or null to let it detect one.</param>
    public int[] Build(string? context, string? languageName, int audioTokens)
    {
        var ids = new List<int>();
        if (context?.Trim() is { Length: > 0 } text)
        {
            ids.AddRange(encode(SystemTurnOpen, true));
            ids.AddRange(encode(text, false));
            ids.AddRange(encode(TurnClose, true));
        }
        ids.AddRange(encode(UserTurn, true));
        ids.Add(Tokens.AudioStart);
        ids.AddRange(Enumerable.Repeat(Tokens.AudioPad, audioTokens));
        ids.Add(Tokens.AudioEnd);
        ids.AddRange(encode(AssistantTurn, true));
        if (languageName is not null)
            ids.AddRange(encode($"{LanguagePrefix}{languageName}<asr_text>", true));
        return ids.ToArray();
    }

    /// <summary>
    /// Reads a window's emitted tokens (without the end of turn): the transcript is what follows the last &lt;asr_text&gt;
    /// (all of it when the prompt forced <paramref name="forcedLanguage"/>), the language what "language X" before it names.
    /// </summary>
    public Qwen3AsrTranscript Parse(IReadOnlyList<int> emitted, string? forcedLanguage)
    {
        var marker = LastMarker(emitted);
        var textTokens = emitted.Skip(marker + 1).ToArray();
        var text = decode(textTokens).Trim();
        if (forcedLanguage is not null) return new Qwen3AsrTranscript(forcedLanguage, text, textTokens, NoSpeech: false);

        var meta = marker < 0 ? "" : decode(emitted.Take(marker)).Trim();
        var firstLine = meta.Split('\n', 2)[0].Trim();
        var named = firstLine.StartsWith(LanguagePrefix, StringComparison.OrdinalIgnoreCase) ? firstLine[LanguagePrefix.Length..].Trim() : null;
        var noSpeech = string.Equals(named, "None", StringComparison.OrdinalIgnoreCase);
        return new Qwen3AsrTranscript(named is null || noSpeech ? null : Qwen3AsrLanguages.CodeOf(named), text, textTokens, noSpeech);
    }

    /// <summary>
    /// The transcript so far in a window's emitted tokens, without special tokens: what follows the last &lt;asr_text&gt;.
    /// Before a marker, nothing while the text may still be the "language X" header, else all of it (a forced language's
    /// output has no header). Decoding more tokens only extends the result, so streamed deltas never show the header.
    /// </summary>
    public string Decode(IReadOnlyList<int> ids)
    {
        var marker = LastMarker(ids);
        if (marker >= 0) return decode(ids.Skip(marker + 1));
        var text = decode(ids);
        var head = text.TrimStart();
        return head.StartsWith(LanguagePrefix, StringComparison.Ordinal) || LanguagePrefix.StartsWith(head, StringComparison.Ordinal) ? "" : text;
    }

    private int LastMarker(IReadOnlyList<int> ids)
    {
        var marker = ids.Count - 1;
        while (marker >= 0 && ids[marker] != Tokens.AsrText) marker--;
        return marker;
    }
}

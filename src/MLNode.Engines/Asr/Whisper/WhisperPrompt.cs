namespace MLNode.Engines.Asr.Whisper;

/// <summary>
/// The decoder prompt of a window, as openai-whisper builds it (<c>_get_initial_tokens</c>):
/// <code>
///   [&lt;|startofprev|&gt; + the last ≤ 223 tokens of " " + prompt]  &lt;|startoftranscript|&gt; &lt;|lang|&gt; &lt;|task|&gt; [&lt;|notimestamps|&gt;]
/// </code>
/// English-only models take no language or task token. <see cref="StartOfTranscript"/> is where the no-speech
/// probability is read.
/// </summary>
public sealed record WhisperPrompt(IReadOnlyList<int> Tokens, int StartOfTranscript)
{
    /// <param name="language">an ISO 639-1 code among the model's languages; ignored by English-only models.</param>
    /// <param name="contextTokens">at most this many prompt tokens are kept (the last ones): half the decoder positions, less one.</param>
    public static WhisperPrompt Build(WhisperTokenizer tokenizer, string? prompt, string language, SpeechTask task, bool timestamps, int contextTokens)
    {
        var special = tokenizer.Special;
        var tokens = new List<int>();
        if (!string.IsNullOrWhiteSpace(prompt) && special.StartOfPrevious is { } previous)
        {
            var text = tokenizer.EncodeText(" " + prompt.Trim());
            tokens.Add(previous);
            tokens.AddRange(text.Skip(Math.Max(0, text.Length - contextTokens)));
        }
        var startOfTranscript = tokens.Count;
        tokens.Add(special.StartOfTranscript);
        if (special.IsMultilingual)
        {
            tokens.Add(special.LanguageToken(language) ?? throw new SpeechJobException("language", $"language '{language}' is not one of this model's"));
            tokens.Add((task == SpeechTask.Translate ? special.Translate : special.Transcribe)
                ?? throw new SpeechJobException("model", $"this model has no {task.ToString().ToLowerInvariant()} token"));
        }
        else if (task == SpeechTask.Translate)
            throw new SpeechJobException("model", "an English-only Whisper cannot translate");
        if (!timestamps && special.NoTimestamps is { } noTimestamps) tokens.Add(noTimestamps);
        return new WhisperPrompt(tokens, startOfTranscript);
    }
}

namespace MLNode.Engines.Asr.Whisper;

/// <summary>
/// The languages of openai-whisper's <c>tokenizer.py</c> in its table order, which is the order of the language
/// tokens after &lt;|startoftranscript|&gt;. Models before large-v3 have the first 99; large-v3 added Cantonese.
/// </summary>
public static class WhisperLanguages
{
    public static IReadOnlyList<string> Codes { get; } =
    [
        "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it", "id", "hi", "fi", "vi",
        "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur", "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk",
        "te", "fa", "lv", "bn", "sr", "az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw",
        "gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo",
        "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su", "yue",
    ];

    /// <summary>The token that names a language: "&lt;|en|&gt;".</summary>
    public static string Token(string code) => $"<|{code}|>";
}

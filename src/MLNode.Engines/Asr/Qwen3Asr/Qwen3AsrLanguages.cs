namespace MLNode.Engines.Asr.Qwen3Asr;

/// <summary>
/// The languages Qwen3-ASR names in its prompt and output ("language English"), by the ISO 639-1 codes the OpenAI API
/// uses. The names are the qwen-asr SDK's <c>SUPPORTED_LANGUAGES</c>. Two have no ISO 639-1 code: Cantonese takes
/// "yue" (ISO 639-3, as Whisper large-v3 names it) and Filipino takes Tagalog's "tl".
/// </summary>
public static class Qwen3AsrLanguages
{
    private static readonly (string Code, string Name)[] All =
    [
        ("zh", "Chinese"), ("en", "English"), ("yue", "Cantonese"), ("ar", "Arabic"), ("de", "German"),
        ("fr", "French"), ("es", "Spanish"), ("pt", "Portuguese"), ("id", "Indonesian"), ("it", "Italian"),
        ("ko", "Korean"), ("ru", "Russian"), ("th", "Thai"), ("vi", "Vietnamese"), ("ja", "Japanese"),
        ("tr", "Turkish"), ("ug", "Uyghur"), ("hi", "Hindi"), ("ms", "Malay"), ("nl", "Dutch"),
        ("sv", "Swedish"), ("da", "Danish"), ("fi", "Finnish"), ("pl", "Polish"), ("cs", "Czech"),
        ("tl", "Filipino"), ("fa", "Persian"), ("el", "Greek"), ("ro", "Romanian"), ("hu", "Hungarian"),
        ("mk", "Macedonian"),
    ];

    private static readonly Dictionary<string, string> NameOfCode = All.ToDictionary(l => l.Code, l => l.Name, StringComparer.OrdinalIgnoreCase);
    private static readonly Dictionary<string, string> CodeOfName = All.ToDictionary(l => l.Name, l => l.Code, StringComparer.OrdinalIgnoreCase);

    /// <summary>The codes, in the SDK's order.</summary>
    public static IReadOnlyList<string> Codes { get; } = All.Select(l => l.Code).ToArray();

    /// <summary>The English name the prompt uses for <paramref name="code"/>, or null when Qwen3-ASR does not know it.</summary>
    public static string? NameOf(string code) => NameOfCode.GetValueOrDefault(code.Trim());

    /// <summary>The code of a name the model wrote (any letter case, as the SDK normalises it), or null for other names.</summary>
    public static string? CodeOf(string name) => CodeOfName.GetValueOrDefault(name.Trim());
}

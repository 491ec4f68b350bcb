using System.Text;

namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>
/// Python's str.upper/lower/title casing: .NET maps one character to one, while Python applies Unicode's
/// full mappings, where ß upper-cases to SS, İ lower-cases to i + combining dot, and digraphs such as Ǆ
/// have a title case of their own.
/// </summary>
internal static class PythonCase
{
    private static readonly Dictionary<char, string> FullUpper = new()
    {
        ['ß'] = "SS", ['ŉ'] = "ʼN", ['ǰ'] = "J̌", ['ﬀ'] = "FF", ['ﬁ'] = "FI", ['ﬂ'] = "FL", ['ﬃ'] = "FFI", ['ﬄ'] = "FFL", ['ﬅ'] = "ST", ['ﬆ'] = "ST",
    };

    private static readonly Dictionary<char, string> FullTitle = new()
    {
        ['ß'] = "Ss", ['ŉ'] = "ʼN", ['ﬀ'] = "Ff", ['ﬁ'] = "Fi", ['ﬂ'] = "Fl", ['ﬃ'] = "Ffi", ['ﬄ'] = "Ffl", ['ﬅ'] = "St", ['ﬆ'] = "St",
        ['Ǆ'] = "ǅ", ['ǅ'] = "ǅ", ['ǆ'] = "ǅ", ['Ǉ'] = "ǈ", ['ǈ'] = "ǈ", ['ǉ'] = "ǈ", ['Ǌ'] = "ǋ", ['ǋ'] = "ǋ", ['ǌ'] = "ǋ", ['Ǳ'] = "ǲ", ['ǲ'] = "ǲ", ['ǳ'] = "ǲ",
    };

    public static string Upper(string s) => Map(s, c => FullUpper.TryGetValue(c, out var upper) ? upper : null, char.ToUpperInvariant);

    public static string Lower(string s) => Map(s, c => c == 'İ' ? "i̇" : null, char.ToLowerInvariant);

    /// <summary>The title case of one character, as the first letter of a word gets it.</summary>
    public static string Title(char c) => FullTitle.TryGetValue(c, out var title) ? title : char.ToUpperInvariant(c).ToString();

    private static string Map(string s, Func<char, string?> special, Func<char, char> simple)
    {
        var text = new StringBuilder(s.Length);
        foreach (var c in s)
        {
            if (special(c) is { } mapped)
                text.Append(mapped);
            else
                text.Append(simple(c));
        }
        return text.ToString();
    }
}

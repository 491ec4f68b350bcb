using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace MLNode.Engines.Llm.Tokenization;

/// <summary>
/// Splits text into the regex matches and the gaps between them, all kept (HF's "Isolated" behaviour).
/// HF's regex engine runs on code points while .NET's runs on UTF-16 units, where a surrogate pair is two
/// characters of category Cs: a letter or digit outside the BMP would fall out of \p{L}/\p{N}. Such text is
/// matched in a stand-in copy where each supplementary code point is one BMP character of the same class.
/// </summary>
internal sealed class IsolatingRegexSplitter(string pattern)
{
    // Stand-ins without case mappings, so the (?i) contractions of Qwen's pattern cannot match them.
    private const char LetterStandIn = '\u00AA';   // ª, Lo
    private const char NumberStandIn = '\u00B2';   // ², No
    private const char OtherStandIn = '\u00A6';    // ¦, So

    private readonly Regex _regex = new(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);

    public void Split(string text, List<string> pieces)
    {
        if (!text.AsSpan().ContainsAnyInRange('\uD800', '\uDFFF'))
        {
            Split(text, text, null, pieces);
            return;
        }
        var (standIn, offsets) = WithStandIns(text);
        Split(text, standIn, offsets, pieces);
    }

    private void Split(string text, string matched, int[]? offsets, List<string> pieces)
    {
        var gapStart = 0;
        foreach (var match in _regex.EnumerateMatches(matched))
        {
            if (match.Length == 0)
                continue;
            var start = offsets?[match.Index] ?? match.Index;
            var end = offsets?[match.Index + match.Length] ?? match.Index + match.Length;
            if (start > gapStart)
                pieces.Add(text[gapStart..start]);
            pieces.Add(text[start..end]);
            gapStart = end;
        }
        if (gapStart < text.Length)
            pieces.Add(text[gapStart..]);
    }

    /// <summary>The stand-in copy and, for each of its positions (and its end), the position in <paramref name="text"/>.</summary>
    private static (string StandIn, int[] Offsets) WithStandIns(string text)
    {
        var standIn = new StringBuilder(text.Length);
        var offsets = new List<int>(text.Length + 1);
        for (var i = 0; i < text.Length; i++)
        {
            offsets.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                standIn.Append(StandInFor(CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]))));
                i++;
            }
            else
            {
                standIn.Append(text[i]);
            }
        }
        offsets.Add(text.Length);
        return (standIn.ToString(), offsets.ToArray());
    }

    private static char StandInFor(UnicodeCategory category) => category switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => LetterStandIn,
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => NumberStandIn,
        // No supplementary code point is whitespace, so everything else is "other" to these patterns.
        _ => OtherStandIn,
    };
}

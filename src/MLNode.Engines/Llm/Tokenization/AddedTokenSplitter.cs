using System.Buffers;
using System.Globalization;

namespace MLNode.Engines.Llm.Tokenization;

/// <summary>A piece of input text: either an added token (<see cref="TokenId"/> ≥ 0) or text still to be tokenized.</summary>
internal readonly record struct TextSegment(int TokenId, string Text)
{
    public bool IsAddedToken => TokenId >= 0;
}

/// <summary>
/// Cuts text at added tokens the way HF's <c>AddedVocabulary</c> does: leftmost-longest, non-overlapping matches
/// over all tokens of the set; a match then rejected (a special token when specials are not allowed, a
/// single-word token inside a word) stays plain text and does not let a shorter overlapping token match instead.
/// </summary>
internal sealed class AddedTokenSplitter
{
    private readonly SearchValues<string>? _contents;
    private readonly Dictionary<char, AddedToken[]> _byFirstChar;

    public AddedTokenSplitter(IEnumerable<AddedToken> tokens, Func<string, string> normalizeContent)
    {
        var byContent = new Dictionary<string, AddedToken>(StringComparer.Ordinal);
        foreach (var token in tokens)
        {
            var content = normalizeContent(token.Content);
            if (content.Length > 0)
                byContent.TryAdd(content, token);
        }
        _contents = byContent.Count > 0 ? SearchValues.Create(byContent.Keys.ToArray(), StringComparison.Ordinal) : null;
        _byFirstChar = byContent
            .GroupBy(entry => entry.Key[0])
            .ToDictionary(group => group.Key, group => group.OrderByDescending(entry => entry.Key.Length).Select(entry => entry.Value with { Content = entry.Key }).ToArray());
    }

    public IEnumerable<TextSegment> Split(string text, bool allowSpecial)
    {
        var plainStart = 0;
        var searchFrom = 0;
        while (_contents is not null && searchFrom < text.Length)
        {
            var found = text.AsSpan(searchFrom).IndexOfAny(_contents);
            if (found < 0)
                break;
            var start = searchFrom + found;
            var token = Array.Find(_byFirstChar[text[start]], candidate => text.AsSpan(start).StartsWith(candidate.Content, StringComparison.Ordinal))!;
            var end = start + token.Content.Length;
            searchFrom = end;
            if ((token.Special && !allowSpecial) || (token.SingleWord && !StandsAlone(text, start, end)))
                continue;
            if (token.LStrip)
                start = Math.Max(plainStart, StartOfTrailingWhitespace(text, start));
            if (token.RStrip)
                end = EndOfLeadingWhitespace(text, end);
            if (start > plainStart)
                yield return new TextSegment(-1, text[plainStart..start]);
            yield return new TextSegment(token.Id, text[start..end]);
            plainStart = searchFrom = end;
        }
        if (plainStart < text.Length)
            yield return new TextSegment(-1, text[plainStart..]);
    }

    private static bool StandsAlone(string text, int start, int end) =>
        (start == 0 || !IsWordChar(text[start - 1])) && (end == text.Length || !IsWordChar(text[end]));

    // HF tests the neighbours with the regex class \w: letters, marks, decimal digits, connector punctuation.
    private static bool IsWordChar(char c) => char.GetUnicodeCategory(c) is
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter or UnicodeCategory.ModifierLetter
        or UnicodeCategory.OtherLetter or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
        or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.ConnectorPunctuation;

    private static int StartOfTrailingWhitespace(string text, int end)
    {
        while (end > 0 && char.IsWhiteSpace(text[end - 1]))
            end--;
        return end;
    }

    private static int EndOfLeadingWhitespace(string text, int start)
    {
        while (start < text.Length && char.IsWhiteSpace(text[start]))
            start++;
        return start;
    }
}

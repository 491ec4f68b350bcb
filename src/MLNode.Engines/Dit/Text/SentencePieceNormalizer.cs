namespace MLNode.Engines.Dit.Text;

/// <summary>
/// SentencePiece's normaliser (normalizer.cc) on UTF-8: user-defined symbols pass verbatim, every other character
/// goes through the longest precompiled-charsmap rule (or is copied, a malformed byte becoming U+FFFD); then
/// leading, trailing and repeated spaces are dropped, the dummy prefix ▁ is added and spaces become ▁.
/// </summary>
internal sealed class SentencePieceNormalizer(SentencePieceModelProto model, PieceTrie userDefined)
{
    private static ReadOnlySpan<byte> SpaceSymbol => "▁"u8;

    private readonly PrecompiledCharsMap? _charsMap =
        model.PrecompiledCharsMap.Length > 0 ? new PrecompiledCharsMap(model.PrecompiledCharsMap, "precompiled_charsmap") : null;

    public byte[] Normalize(ReadOnlySpan<byte> input)
    {
        if (model.RemoveExtraWhitespaces)
        {
            while (!input.IsEmpty)
            {
                var consumed = NormalizePrefix(input, out var piece);
                if (!piece.SequenceEqual(" "u8)) break;
                input = input[consumed..];
            }
        }
        if (input.IsEmpty) return [];

        var output = new List<byte>(input.Length * 3);
        if (model.AddDummyPrefix) AppendSpace(output);
        var previousWasSpace = model.RemoveExtraWhitespaces;
        while (!input.IsEmpty)
        {
            var consumed = NormalizePrefix(input, out var piece);
            // A replacement that starts with spaces right after a space contributes none of them.
            while (previousWasSpace && !piece.IsEmpty && piece[0] == (byte)' ') piece = piece[1..];
            if (!piece.IsEmpty)
            {
                foreach (var b in piece)
                {
                    if (b == (byte)' ') AppendSpace(output);
                    else output.Add(b);
                }
                previousWasSpace = piece[^1] == (byte)' ';
            }
            input = input[consumed..];
            if (!model.RemoveExtraWhitespaces) previousWasSpace = false;
        }
        if (model.RemoveExtraWhitespaces)
        {
            var space = model.EscapeWhitespaces ? SpaceSymbol : " "u8;
            while (EndsWith(output, space)) output.RemoveRange(output.Count - space.Length, space.Length);
        }
        return [.. output];
    }

    private static bool EndsWith(List<byte> output, ReadOnlySpan<byte> suffix)
    {
        if (output.Count < suffix.Length) return false;
        for (var i = 0; i < suffix.Length; i++)
            if (output[output.Count - suffix.Length + i] != suffix[i]) return false;
        return true;
    }

    private void AppendSpace(List<byte> output)
    {
        if (model.EscapeWhitespaces) output.AddRange(SpaceSymbol);
        else output.Add((byte)' ');
    }

    /// <summary>How many input bytes the next unit takes; <paramref name="normalized"/> is what they become.</summary>
    private int NormalizePrefix(ReadOnlySpan<byte> input, out ReadOnlySpan<byte> normalized)
    {
        var symbol = userDefined.LongestPrefix(input).Length;
        if (symbol > 0)
        {
            normalized = input[..symbol];
            return symbol;
        }
        if (_charsMap is not null)
        {
            var (length, replacement) = _charsMap.LongestMatch(input);
            if (length > 0)
            {
                normalized = replacement.Span;
                return length;
            }
        }
        if (SentencePieceUtf8.TryDecode(input, out var charLength))
        {
            normalized = input[..charLength];
            return charLength;
        }
        normalized = SentencePieceUtf8.ReplacementCharacter;
        return 1;
    }
}

namespace MLNode.Engines.Dit.Text;

/// <summary>SentencePiece's UTF-8 character rules (util.cc), which normalisation, the lattice and byte decoding follow.</summary>
internal static class SentencePieceUtf8
{
    /// <summary>UTF-8 of U+FFFD, what a malformed byte becomes.</summary>
    public static ReadOnlySpan<byte> ReplacementCharacter => [0xEF, 0xBF, 0xBD];

    /// <summary>
    /// The length of the character starting <paramref name="text"/> as sentencepiece's <c>OneCharLen</c> reads it
    /// from the lead byte alone, capped at what is left.
    /// </summary>
    public static int OneCharLength(ReadOnlySpan<byte> text) => Math.Min(text.Length, (text[0] >> 4) switch
    {
        < 0xC => 1,
        < 0xE => 2,
        0xE => 3,
        _ => 4,
    });

    /// <summary>
    /// <c>IsValidDecodeUTF8</c>: whether <paramref name="text"/> starts with a well-formed character (shortest form,
    /// no surrogates, at most U+10FFFF) and its length; a malformed start counts as one byte.
    /// </summary>
    public static bool TryDecode(ReadOnlySpan<byte> text, out int length)
    {
        length = 1;
        var lead = text[0];
        if (lead < 0x80) return true;
        int need, codePoint, minimum;
        if ((lead & 0xE0) == 0xC0) (need, codePoint, minimum) = (2, lead & 0x1F, 0x80);
        else if ((lead & 0xF0) == 0xE0) (need, codePoint, minimum) = (3, lead & 0x0F, 0x800);
        else if ((lead & 0xF8) == 0xF0) (need, codePoint, minimum) = (4, lead & 0x07, 0x10000);
        else return false;
        if (text.Length < need) return false;
        for (var i = 1; i < need; i++)
        {
            if ((text[i] & 0xC0) != 0x80) return false;
            codePoint = (codePoint << 6) | (text[i] & 0x3F);
        }
        if (codePoint < minimum || codePoint > 0x10FFFF || codePoint is >= 0xD800 and < 0xE000) return false;
        length = need;
        return true;
    }
}

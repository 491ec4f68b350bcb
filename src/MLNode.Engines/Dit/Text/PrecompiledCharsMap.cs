using System.Buffers.Binary;

namespace MLNode.Engines.Dit.Text;

/// <summary>
/// SentencePiece's compiled normalisation rules (NormalizerSpec.precompiled_charsmap): a Darts-clone double-array
/// trie over UTF-8 input whose values point into a block of NUL-terminated replacement strings. The blob is
/// <c>&lt;trie size: uint32 LE&gt;&lt;trie units: uint32 LE each&gt;&lt;replacements&gt;</c>. For nmt_nfkc the
/// rules are NFKC plus the NMT clean-ups (control characters dropped, odd spaces made ' '), compiled by
/// sentencepiece from its Unicode tables — applying them here gives its normalisation exactly, with no Unicode
/// tables of our own.
/// </summary>
internal sealed class PrecompiledCharsMap
{
    private readonly uint[] _units;
    private readonly byte[] _replacements;

    public PrecompiledCharsMap(ReadOnlySpan<byte> blob, string source)
    {
        if (blob.Length <= 4) throw new InvalidDataException($"{source}: the precompiled charsmap is truncated");
        var trieBytes = BinaryPrimitives.ReadUInt32LittleEndian(blob);
        if (trieBytes >= blob.Length - 4 || trieBytes % 4 != 0)
            throw new InvalidDataException($"{source}: the precompiled charsmap's trie size {trieBytes} does not fit its {blob.Length} bytes");
        _units = new uint[trieBytes / 4];
        for (var i = 0; i < _units.Length; i++)
            _units[i] = BinaryPrimitives.ReadUInt32LittleEndian(blob[(4 + 4 * i)..]);
        _replacements = blob[(4 + (int)trieBytes)..].ToArray();
    }

    /// <summary>
    /// The longest rule matching a prefix of <paramref name="input"/>: its length in input bytes and its replacement
    /// (possibly empty); length 0 when no rule applies.
    /// </summary>
    public (int Length, ReadOnlyMemory<byte> Replacement) LongestMatch(ReadOnlySpan<byte> input)
    {
        var (length, value) = (0, 0);
        // Darts-clone commonPrefixSearch: follow one byte per transition; a unit with a leaf marks a key ending here.
        var unit = _units[0];
        var node = Offset(unit);
        for (var i = 0; i < input.Length; i++)
        {
            node ^= input[i];
            if (node >= _units.Length) break;
            unit = _units[node];
            if (Label(unit) != input[i]) break;
            node ^= Offset(unit);
            if (HasLeaf(unit) && node < _units.Length) (length, value) = (i + 1, Value(_units[node]));
        }
        if (length == 0) return (0, ReadOnlyMemory<byte>.Empty);
        if (value >= _replacements.Length) throw new InvalidDataException($"a charsmap rule points at byte {value} of {_replacements.Length} replacement bytes");
        var end = Array.IndexOf(_replacements, (byte)0, value);
        return (length, _replacements.AsMemory(value, (end < 0 ? _replacements.Length : end) - value));
    }

    private static uint Offset(uint unit) => (unit >> 10) << (int)((unit & (1u << 9)) >> 6);

    private static uint Label(uint unit) => unit & ((1u << 31) | 0xFF);

    private static bool HasLeaf(uint unit) => ((unit >> 8) & 1) == 1;

    private static int Value(uint unit) => (int)(unit & ((1u << 31) - 1));
}

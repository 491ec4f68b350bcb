using System.Globalization;
using System.Text;

namespace MLNode.Engines.Llm.Tokenization.Unicode;

/// <summary>
/// Unicode NFC and NFD. The worker runs in invariant-globalization mode, where <see cref="string.Normalize()"/>
/// silently returns non-ASCII text unchanged, so the algorithm runs here on the tables in
/// canonical_normalization.txt (made by make_canonical_normalization.py).
/// </summary>
public static class CanonicalNormalizer
{
    // Hangul syllables decompose and compose arithmetically (Unicode §3.12).
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    private static readonly Lazy<Tables> Data = new(Tables.Load);

    /// <summary>NFC: canonical decomposition, then recomposition of primary composites.</summary>
    public static string Compose(string text)
    {
        // Below U+0300 there are no combining marks, so every such text is already NFC.
        if (!text.AsSpan().ContainsAnyExceptInRange('\0', '\u02FF'))
            return text;
        var codePoints = Decompose(text, Data.Value);
        Recompose(codePoints, Data.Value);
        return ToText(codePoints);
    }

    /// <summary>NFD: full canonical decomposition in canonical order.</summary>
    public static string Decompose(string text) =>
        // Below U+00C0 nothing decomposes.
        text.AsSpan().ContainsAnyExceptInRange('\0', '\u00BF') ? ToText(Decompose(text, Data.Value)) : text;

    private static List<int> Decompose(string text, Tables tables)
    {
        var codePoints = new List<int>(text.Length);
        // Lone surrogates come out as U+FFFD, as they would from UTF-8 encoding.
        foreach (var rune in text.EnumerateRunes())
        {
            var cp = rune.Value;
            if (cp - SBase is >= 0 and < SCount)
            {
                var index = cp - SBase;
                codePoints.Add(LBase + index / NCount);
                codePoints.Add(VBase + index % NCount / TCount);
                if (index % TCount != 0)
                    codePoints.Add(TBase + index % TCount);
            }
            else if (tables.Decompositions.TryGetValue(cp, out var decomposition))
            {
                codePoints.AddRange(decomposition);
            }
            else
            {
                codePoints.Add(cp);
            }
        }
        SortCombiningMarks(codePoints, tables);
        return codePoints;
    }

    /// <summary>Canonical ordering: a stable sort by combining class of each run of non-starters.</summary>
    private static void SortCombiningMarks(List<int> codePoints, Tables tables)
    {
        for (var i = 1; i < codePoints.Count; i++)
        {
            var cp = codePoints[i];
            var ccc = tables.CombiningClass(cp);
            if (ccc == 0)
                continue;
            var j = i;
            while (j > 0 && tables.CombiningClass(codePoints[j - 1]) > ccc)
            {
                codePoints[j] = codePoints[j - 1];
                j--;
            }
            codePoints[j] = cp;
        }
    }

    private static void Recompose(List<int> codePoints, Tables tables)
    {
        var written = 0;
        var starter = -1;
        var lastClass = 0;
        for (var i = 0; i < codePoints.Count; i++)
        {
            var cp = codePoints[i];
            var ccc = tables.CombiningClass(cp);
            // A mark reaches the starter unless something left between them has class 0 or at least its own.
            var reachable = starter >= 0 && (starter == written - 1 || (lastClass != 0 && lastClass < ccc));
            if (reachable && TryCompose(codePoints[starter], cp, tables, out var composite))
            {
                codePoints[starter] = composite;
                continue;
            }
            if (ccc == 0)
                starter = written;
            lastClass = ccc;
            codePoints[written++] = cp;
        }
        codePoints.RemoveRange(written, codePoints.Count - written);
    }

    private static bool TryCompose(int first, int second, Tables tables, out int composite)
    {
        if (first - LBase is >= 0 and < LCount && second - VBase is >= 0 and < VCount)
        {
            composite = SBase + ((first - LBase) * VCount + second - VBase) * TCount;
            return true;
        }
        if (first - SBase is >= 0 and < SCount && (first - SBase) % TCount == 0 && second - TBase is > 0 and < TCount)
        {
            composite = first + second - TBase;
            return true;
        }
        return tables.Compositions.TryGetValue(Pair(first, second), out composite);
    }

    private static long Pair(int first, int second) => ((long)first << 21) | (uint)second;

    private static string ToText(List<int> codePoints)
    {
        var text = new StringBuilder(codePoints.Count);
        foreach (var cp in codePoints)
            text.Append(char.ConvertFromUtf32(cp));
        return text.ToString();
    }

    private sealed class Tables
    {
        private readonly Dictionary<int, byte> _combiningClasses = [];

        public Dictionary<int, int[]> Decompositions { get; } = [];

        public Dictionary<long, int> Compositions { get; } = [];

        public byte CombiningClass(int cp) => cp < 0x300 ? (byte)0 : _combiningClasses.GetValueOrDefault(cp);

        public static Tables Load()
        {
            var tables = new Tables();
            using var stream = typeof(CanonicalNormalizer).Assembly.GetManifestResourceStream("MLNode.Engines.Tokenization.canonical_normalization.txt")
                ?? throw new InvalidOperationException("canonical_normalization.txt is not embedded");
            using var reader = new StreamReader(stream);
            var section = "";
            while (reader.ReadLine() is { } line)
            {
                if (line.StartsWith('#'))
                    continue;
                if (line.StartsWith('['))
                {
                    section = line;
                    continue;
                }
                var fields = line.Split(' ');
                switch (section)
                {
                    case "[combining classes]":
                        var range = fields[0].Split("..");
                        for (var cp = Hex(range[0]); cp <= Hex(range[1]); cp++)
                            tables._combiningClasses[cp] = byte.Parse(fields[1], CultureInfo.InvariantCulture);
                        break;
                    case "[decompositions]":
                        tables.Decompositions[Hex(fields[0])] = fields[1..].Select(Hex).ToArray();
                        break;
                    case "[compositions]":
                        tables.Compositions[Pair(Hex(fields[0]), Hex(fields[1]))] = Hex(fields[2]);
                        break;
                    default:
                        throw new InvalidDataException($"canonical_normalization.txt: line outside a known section: {line}");
                }
            }
            return tables;
        }

        private static int Hex(string value) => int.Parse(value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
    }
}

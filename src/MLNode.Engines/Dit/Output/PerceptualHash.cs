namespace MLNode.Engines.Dit.Output;

/// <summary>
/// 64-bit perceptual hashes of one frame's luma, pinned so every worker computes the same bits:
/// luma is BT.601 (0.299 R + 0.587 G + 0.114 B) in float64; a frame is shrunk by averaging the pixels of each cell
/// (rows ⌊i·H/n⌋ to ⌊(i+1)·H/n⌋, at least one, likewise columns); bits run row by row, most significant first.
/// </summary>
public static class PerceptualHash
{
    private const int DctSize = 32;
    private const int KeptSize = 8;

    public static double[] Luma(ReadOnlySpan<byte> rgb, int height, int width)
    {
        var luma = new double[height * width];
        for (var i = 0; i < luma.Length; i++)
            luma[i] = 0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2];
        return luma;
    }

    /// <summary>
    /// pHash: the 32×32 shrunk luma's 2-D DCT-II, its top-left 8×8 (lowest frequencies); a bit is set where a coefficient
    /// exceeds the median of the 63 coefficients other than DC (DC, the mean brightness, would skew the median).
    /// </summary>
    public static ulong PHash(double[] luma, int height, int width)
    {
        var small = Shrink(luma, height, width, DctSize, DctSize);
        var dct = Dct2(small);
        var kept = new double[KeptSize * KeptSize];
        for (var u = 0; u < KeptSize; u++)
            for (var v = 0; v < KeptSize; v++)
                kept[u * KeptSize + v] = dct[u * DctSize + v];
        var ac = kept.Skip(1).Order().ToArray();
        var median = ac[ac.Length / 2]; // 63 values: the middle one
        ulong bits = 0;
        foreach (var c in kept) bits = (bits << 1) | (c > median ? 1ul : 0ul);
        return bits;
    }

    /// <summary>dHash: luma shrunk to 9 columns × 8 rows; a bit is set where a cell is brighter than the one to its left.</summary>
    public static ulong DHash(double[] luma, int height, int width)
    {
        var small = Shrink(luma, height, width, KeptSize, KeptSize + 1);
        ulong bits = 0;
        for (var r = 0; r < KeptSize; r++)
            for (var c = 0; c < KeptSize; c++)
                bits = (bits << 1) | (small[r * (KeptSize + 1) + c + 1] > small[r * (KeptSize + 1) + c] ? 1ul : 0ul);
        return bits;
    }

    public static string Hex(ulong bits) => bits.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);

    private static double[] Shrink(double[] luma, int height, int width, int rows, int columns)
    {
        var small = new double[rows * columns];
        for (var i = 0; i < rows; i++)
        {
            var (r0, r1) = Cell(i, height, rows);
            for (var j = 0; j < columns; j++)
            {
                var (c0, c1) = Cell(j, width, columns);
                var sum = 0.0;
                for (var r = r0; r < r1; r++)
                    for (var c = c0; c < c1; c++)
                        sum += luma[r * width + c];
                small[i * columns + j] = sum / ((r1 - r0) * (c1 - c0));
            }
        }
        return small;
    }

    private static (int Start, int End) Cell(int index, int length, int cells)
    {
        var start = (int)((long)index * length / cells);
        return (start, Math.Max(start + 1, (int)((long)(index + 1) * length / cells)));
    }

    /// <summary>Orthonormal 2-D DCT-II of an n×n block, rows then columns.</summary>
    private static double[] Dct2(double[] block)
    {
        const int n = DctSize;
        var basis = new double[n * n];
        for (var k = 0; k < n; k++)
            for (var x = 0; x < n; x++)
                basis[k * n + x] = (k == 0 ? Math.Sqrt(1.0 / n) : Math.Sqrt(2.0 / n)) * Math.Cos(Math.PI * (2 * x + 1) * k / (2.0 * n));
        var rows = new double[n * n];
        for (var r = 0; r < n; r++)
            for (var k = 0; k < n; k++)
            {
                var sum = 0.0;
                for (var x = 0; x < n; x++) sum += basis[k * n + x] * block[r * n + x];
                rows[r * n + k] = sum;
            }
        var result = new double[n * n];
        for (var k = 0; k < n; k++)
            for (var c = 0; c < n; c++)
            {
                var sum = 0.0;
                for (var y = 0; y < n; y++) sum += basis[k * n + y] * rows[y * n + c];
                result[k * n + c] = sum;
            }
        return result;
    }
}

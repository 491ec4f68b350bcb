namespace MLNode.Runtime.Checkpoints;

/// <summary>
/// Activations quantised to FP8 E4M3 per (row, 128-column group), as vLLM and DeepSeek quantise the inputs of
/// block-scaled FP8 linears (w8a8 block FP8): each group gets a float32 scale = amax / 448 (rounded to nearest) and each
/// value the E4M3 nearest to x / scale (<see cref="Fp8E4M3.FromFloat"/>); a group whose scale is 0 quantises to zeros.
/// Reference implementation for the native kernel, in its layout: codes [paddedRows, cols], rows past the input's
/// zero; scales [ceil(cols/128), paddedRows], the rows contiguous (the layout cuBLASLt's 128-element block scaling reads).
/// </summary>
public static class Fp8GroupQuantizer
{
    public const int GroupSize = 128;

    /// <summary>Rows of the quantised activations for <paramref name="rows"/> inputs: cuBLASLt's block-scaled GEMM takes a multiple of 4.</summary>
    public static int PaddedRows(int rows) => (rows + 3) / 4 * 4;

    /// <summary>How many scale groups cover a row of <paramref name="cols"/> values.</summary>
    public static int Groups(int cols) => (cols + GroupSize - 1) / GroupSize;

    public static void Quantize(ReadOnlySpan<float> x, int rows, int cols, int paddedRows, Span<byte> codes, Span<float> scales)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        ArgumentOutOfRangeException.ThrowIfLessThan(paddedRows, rows);
        if (x.Length != (long)rows * cols)
            throw new ArgumentException($"x holds {x.Length} values; [{rows}, {cols}] needs {(long)rows * cols}", nameof(x));
        if (codes.Length != (long)paddedRows * cols)
            throw new ArgumentException($"codes holds {codes.Length} bytes; [{paddedRows}, {cols}] needs {(long)paddedRows * cols}", nameof(codes));
        var groups = Groups(cols);
        if (scales.Length != (long)groups * paddedRows)
            throw new ArgumentException($"scales holds {scales.Length} values; [{groups}, {paddedRows}] needs {(long)groups * paddedRows}", nameof(scales));

        codes.Clear();
        scales.Clear();
        for (var row = 0; row < rows; row++)
        {
            for (var group = 0; group < groups; group++)
            {
                var first = group * GroupSize;
                var values = x.Slice(row * cols + first, Math.Min(GroupSize, cols - first));
                var amax = 0f;
                foreach (var value in values)
                {
                    var magnitude = MathF.Abs(value);
                    amax = magnitude > amax ? magnitude : amax; // NaN never wins, as CUDA's fmaxf passes over it
                }
                var scale = amax / Fp8E4M3.MaxValue;
                scales[group * paddedRows + row] = scale;
                var target = codes.Slice(row * cols + first, values.Length);
                for (var i = 0; i < values.Length; i++)
                    target[i] = scale == 0 ? (byte)0 : Fp8E4M3.FromFloat(values[i] / scale);
            }
        }
    }
}

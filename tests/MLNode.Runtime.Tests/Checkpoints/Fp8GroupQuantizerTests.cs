using MLNode.Runtime.Checkpoints;

namespace MLNode.Runtime.Tests.Checkpoints;

/// <summary>Per-(row, 128-column group) FP8 quantisation of activations: scales, codes, padding and layout.</summary>
public sealed class Fp8GroupQuantizerTests
{
    [Fact]
    public void Quantises_each_row_group_with_its_amax_over_448()
    {
        const int Rows = 3, Cols = 260, Padded = 4; // a partial third group, one padding row
        var x = new float[Rows * Cols];
        for (var i = 0; i < x.Length; i++)
            x[i] = (i % 7 - 3) * 0.25f * (1 + i / Cols);
        x[0 * Cols + 5] = -896f;     // row 0, group 0: amax 896 → scale 2, codes x / 2
        x[2 * Cols + 259] = 44.8f;    // row 2, group 2 (4 columns): amax 44.8
        for (var col = 128; col < 256; col++) x[1 * Cols + col] = 0; // row 1, group 1: all zero → scale 0, codes 0
        var codes = new byte[Padded * Cols];
        var scales = new float[3 * Padded];

        Fp8GroupQuantizer.Quantize(x, Rows, Cols, Padded, codes, scales);

        Assert.Equal(2f, scales[0 * Padded + 0]);
        Assert.Equal(0f, scales[1 * Padded + 1]);
        Assert.Equal(44.8f / 448f, scales[2 * Padded + 2]);
        Assert.Equal(Fp8E4M3.FromFloat(-448f), codes[5]);
        Assert.Equal(Fp8E4M3.FromFloat(x[7] / 2f), codes[7]);
        Assert.All(codes.AsSpan(1 * Cols + 128, 128).ToArray(), code => Assert.Equal(0, code));
        Assert.All(codes.AsSpan(Rows * Cols).ToArray(), code => Assert.Equal(0, code)); // the padding row
        Assert.Equal([0f, 0f, 0f], [scales[3], scales[Padded + 3], scales[2 * Padded + 3]]);
        for (var row = 0; row < Rows; row++)
        {
            for (var col = 0; col < Cols; col++)
            {
                // E4M3 keeps 4 significant bits: the dequantised value is within 2⁻⁴ of x relative to it, or below the subnormal step.
                var scale = scales[col / 128 * Padded + row];
                var value = Fp8E4M3.ToFloat(codes[row * Cols + col]) * scale;
                Assert.True(Math.Abs(value - x[row * Cols + col]) <= Math.Max(Math.Abs(x[row * Cols + col]) / 16, scale / 1024),
                    $"[{row}, {col}]: {x[row * Cols + col]} came back as {value}");
            }
        }
    }

    [Fact]
    public void Pads_rows_to_a_multiple_of_four()
    {
        Assert.Equal([0, 4, 4, 4, 4, 8, 36], new[] { 0, 1, 2, 3, 4, 5, 33 }.Select(Fp8GroupQuantizer.PaddedRows).ToArray());
        Assert.Equal([1, 1, 2, 32], new[] { 1, 128, 129, 4096 }.Select(Fp8GroupQuantizer.Groups).ToArray());
    }

    [Fact]
    public void Refuses_buffers_of_the_wrong_size()
    {
        var error = Assert.Throws<ArgumentException>(() => Fp8GroupQuantizer.Quantize(new float[6], 2, 3, 4, new byte[12], new float[2]));
        Assert.Contains("[1, 4] needs 4", error.Message);
    }
}

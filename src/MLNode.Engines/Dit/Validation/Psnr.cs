namespace MLNode.Engines.Dit.Validation;

/// <summary>
/// Peak signal-to-noise ratio of two 8-bit frames: 10·log10(255² / MSE), the MSE over every value of the frame (all
/// three channels). Identical frames have MSE 0 and an infinite PSNR; they are reported as <see cref="CapDb"/>, which
/// keeps a mean over frames and the JSON finite. 100 dB is an MSE of 6.5e-6 levels², far above any threshold (honest
/// cross-stack frames: 30–40 dB), so the cap decides nothing; exact equality is reported separately (bit_exact).
/// </summary>
public static class Psnr
{
    public const double CapDb = 100;

    private const double Peak = 255;

    public static double Frame(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual)
    {
        if (expected.Length != actual.Length) throw new ArgumentException($"frames of {expected.Length} and {actual.Length} values", nameof(actual));
        if (expected.IsEmpty) throw new ArgumentException("empty frames", nameof(expected));
        long squared = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            var d = expected[i] - actual[i];
            squared += d * d;
        }
        if (squared == 0) return CapDb;
        var mse = (double)squared / expected.Length;
        return Math.Min(CapDb, 10 * Math.Log10(Peak * Peak / mse));
    }
}

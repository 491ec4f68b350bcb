namespace MLNode.Engines.Dit.Validation;

/// <summary>
/// Structural similarity (Wang, Bovik, Sheikh, Simoncelli 2004) of two 8-bit RGB frames [H, W, 3], as pytorch-msssim's
/// <c>ssim(x, y, data_range=255)</c> and skimage's <c>structural_similarity(gaussian_weights=True, sigma=1.5,
/// use_sample_covariance=False, data_range=255, channel_axis=-1)</c> compute it:
/// <code>
///   w        = 11×11 Gaussian, σ = 1.5, normalised (separable: g ⊗ g)
///   μx, μy   = w * x, w * y                          local means over each window lying wholly inside the frame
///   σx², σy² = w * x² − μx², w * y² − μy²            local variances (population: no n/(n−1))
///   σxy      = w * xy − μx μy
///   SSIM     = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)),  C1 = (0.01·255)², C2 = (0.03·255)²
/// </code>
/// averaged over the window positions of each channel, then over R, G and B (per channel, not on luma, so the values
/// compare with the published RGB numbers). Computed in float64.
/// </summary>
public static class Ssim
{
    public const int WindowSize = 11;
    public const double Sigma = 1.5;
    public const double K1 = 0.01;
    public const double K2 = 0.03;

    private const double Peak = 255;
    private const double C1 = K1 * Peak * K1 * Peak;
    private const double C2 = K2 * Peak * K2 * Peak;
    private const int Channels = 3;

    private static readonly double[] G = Gaussian();

    /// <summary>The 1-D Gaussian g (sums to 1) whose outer product is the window.</summary>
    public static IReadOnlyList<double> Window => G;

    public static double Frame(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int height, int width)
    {
        if (height < WindowSize || width < WindowSize)
            throw new ArgumentException($"SSIM needs frames of at least {WindowSize}×{WindowSize}, got {width}×{height}");
        var values = (long)height * width * Channels;
        if (x.Length != values || y.Length != values)
            throw new ArgumentException($"expected two {width}×{height} RGB frames ({values} values), got {x.Length} and {y.Length}");
        var sum = 0.0;
        for (var c = 0; c < Channels; c++) sum += Channel(x, y, height, width, c);
        return sum / Channels;
    }

    /// <summary>The mean of one channel's SSIM map: the window filtered along rows, then along columns of those sums.</summary>
    private static double Channel(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, int height, int width, int channel)
    {
        var g = G;
        var outWidth = width - WindowSize + 1;
        var outHeight = height - WindowSize + 1;
        // Row-filtered moments: x, y, x², y², xy at each row and each window column.
        var (rx, ry, rxx, ryy, rxy) = (new double[height * outWidth], new double[height * outWidth], new double[height * outWidth],
            new double[height * outWidth], new double[height * outWidth]);
        for (var r = 0; r < height; r++)
        {
            for (var j = 0; j < outWidth; j++)
            {
                double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
                for (var k = 0; k < WindowSize; k++)
                {
                    var at = (r * width + j + k) * Channels + channel;
                    double a = x[at], b = y[at], w = g[k];
                    sx += w * a;
                    sy += w * b;
                    sxx += w * a * a;
                    syy += w * b * b;
                    sxy += w * a * b;
                }
                var o = r * outWidth + j;
                (rx[o], ry[o], rxx[o], ryy[o], rxy[o]) = (sx, sy, sxx, syy, sxy);
            }
        }

        var total = 0.0;
        for (var i = 0; i < outHeight; i++)
        {
            for (var j = 0; j < outWidth; j++)
            {
                double mx = 0, my = 0, mxx = 0, myy = 0, mxy = 0;
                for (var k = 0; k < WindowSize; k++)
                {
                    var o = (i + k) * outWidth + j;
                    var w = g[k];
                    mx += w * rx[o];
                    my += w * ry[o];
                    mxx += w * rxx[o];
                    myy += w * ryy[o];
                    mxy += w * rxy[o];
                }
                var (vx, vy, cxy) = (mxx - mx * mx, myy - my * my, mxy - mx * my);
                total += (2 * mx * my + C1) * (2 * cxy + C2) / ((mx * mx + my * my + C1) * (vx + vy + C2));
            }
        }
        return total / ((double)outHeight * outWidth);
    }

    private static double[] Gaussian()
    {
        var g = new double[WindowSize];
        for (var k = 0; k < WindowSize; k++)
        {
            var d = k - WindowSize / 2;
            g[k] = Math.Exp(-d * d / (2 * Sigma * Sigma));
        }
        var sum = g.Sum();
        return [.. g.Select(v => v / sum)];
    }
}

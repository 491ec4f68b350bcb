using System.Diagnostics;
using MLNode.Engines.Dit.Output;
using MLNode.Engines.Dit.Validation;

namespace MLNode.Engines.Tests.Dit;

/// <summary>
/// The frame metrics of the validator against values derived by hand: PSNR from its definition, SSIM on images whose
/// window statistics have closed forms (constant images, a column-striped image against its one-pixel shift and against
/// a brightened copy), pHash distance; and PNG frames read back from FFmpeg's encoder with each scanline filter.
/// </summary>
public sealed class VideoMetricsTests
{
    // The closed forms are evaluated in float64 like the metric; what separates them is the order of a few hundred
    // additions per window (relative error ~1e-13). A wrong K1, K2, σ or window shifts the values by 1e-3 or more.
    private const double Tolerance = 1e-9;

    private const double C1 = 0.01 * 255 * 0.01 * 255;
    private const double C2 = 0.03 * 255 * 0.03 * 255;

    [Fact]
    public void Psnr_follows_its_definition_and_caps_identical_frames()
    {
        var frame = Frame(16, 16, (_, c, ch) => (byte)(10 * c + ch));
        var shifted = frame.Select(v => (byte)(v + 5)).ToArray();
        var oneOff = (byte[])frame.Clone();
        oneOff[100]++;

        // Every value 5 levels off: MSE 25, PSNR 20·log10(255/5).
        Assert.Equal(20 * Math.Log10(255.0 / 5), Psnr.Frame(frame, shifted), Tolerance);
        // One value of 16·16·3 one level off: MSE 1/768.
        Assert.Equal(10 * Math.Log10(255.0 * 255 * 768), Psnr.Frame(frame, oneOff), Tolerance);
        Assert.Equal(Psnr.CapDb, Psnr.Frame(frame, frame));
    }

    [Fact]
    public void Ssim_window_is_the_normalised_11_tap_gaussian_of_sigma_1_5()
    {
        var g = Ssim.Window;

        Assert.Equal(11, g.Count);
        Assert.Equal(1.0, g.Sum(), Tolerance);
        Assert.Equal(Math.Exp(-1 / 4.5), g[6] / g[5], Tolerance);
        Assert.Equal(Math.Exp(-25 / 4.5), g[0] / g[5], Tolerance);
    }

    [Fact]
    public void Ssim_of_a_frame_with_itself_is_one()
    {
        var random = new Random(3);
        var frame = Frame(20, 24, (_, _, _) => (byte)random.Next(256));

        Assert.Equal(1.0, Ssim.Frame(frame, frame, 20, 24), Tolerance);
    }

    [Fact]
    public void Ssim_of_constant_frames_is_the_luminance_term()
    {
        // No variance anywhere: the contrast-structure term is C2/C2 = 1, leaving (2ab + C1) / (a² + b² + C1).
        var a = Frame(16, 16, (_, _, _) => 100);
        var b = Frame(16, 16, (_, _, _) => 120);

        Assert.Equal((2.0 * 100 * 120 + C1) / (100.0 * 100 + 120.0 * 120 + C1), Ssim.Frame(a, b, 16, 16), Tolerance);
    }

    [Fact]
    public void Ssim_of_stripes_against_their_one_pixel_shift_is_the_closed_form()
    {
        // Columns alternate A, B; rows are equal, so only the horizontal taps matter. A window starting at an even column
        // weighs A by s = Σ g[even k] and B by 1 − s; the shifted stripes swap A and B. Then
        // σx² = σy² = s(1 − s)(A − B)², σxy = AB − μx μy = −s(1 − s)(A − B)², the same at every window.
        const double A = 50, B = 200;
        var x = Frame(16, 32, (_, c, _) => (byte)(c % 2 == 0 ? A : B));
        var y = Frame(16, 32, (_, c, _) => (byte)(c % 2 == 0 ? B : A));
        var s = Enumerable.Range(0, 11).Where(k => k % 2 == 0).Sum(k => Ssim.Window[k]);
        var (mx, my, variance) = (A * s + B * (1 - s), B * s + A * (1 - s), s * (1 - s) * (A - B) * (A - B));

        var expected = (2 * mx * my + C1) / (mx * mx + my * my + C1) * (C2 - 2 * variance) / (2 * variance + C2);

        Assert.Equal(expected, Ssim.Frame(x, y, 16, 32), Tolerance);
        Assert.True(expected < -0.98, $"{expected}: anti-correlated stripes score near −1");
    }

    [Fact]
    public void Ssim_of_a_brightened_frame_is_the_mean_luminance_term()
    {
        // y = x + c keeps every variance and covariance (cs = 1); windows starting at even and odd columns alternate
        // between the two local means μ and μ', 11 of each over the 22 window positions of a 32-wide frame.
        const double A = 50, B = 100, C = 30;
        var x = Frame(16, 32, (_, col, _) => (byte)(col % 2 == 0 ? A : B));
        var y = x.Select(v => (byte)(v + C)).ToArray();
        var s = Enumerable.Range(0, 11).Where(k => k % 2 == 0).Sum(k => Ssim.Window[k]);
        static double Luminance(double mu) => (2 * mu * (mu + C) + C1) / (mu * mu + (mu + C) * (mu + C) + C1);

        var expected = (Luminance(A * s + B * (1 - s)) + Luminance(B * s + A * (1 - s))) / 2;

        Assert.Equal(expected, Ssim.Frame(x, y, 16, 32), Tolerance);
    }

    [Fact]
    public void Ssim_averages_the_channels()
    {
        // Channel 0 differs as the constant frames above; channels 1 and 2 are equal (SSIM 1).
        var a = Frame(16, 16, (_, _, ch) => (byte)(ch == 0 ? 100 : 7));
        var b = Frame(16, 16, (_, _, ch) => (byte)(ch == 0 ? 120 : 7));
        var red = (2.0 * 100 * 120 + C1) / (100.0 * 100 + 120.0 * 120 + C1);

        Assert.Equal((red + 2) / 3, Ssim.Frame(a, b, 16, 16), Tolerance);
    }

    [Fact]
    public void PHash_distance_counts_differing_bits()
    {
        Assert.Equal(4, VideoComparison.Distance(0xFF, 0x0F));
        Assert.Equal(64, VideoComparison.Distance(0, ulong.MaxValue));
    }

    [Theory]
    [InlineData("none")]
    [InlineData("sub")]
    [InlineData("up")]
    [InlineData("avg")]
    [InlineData("paeth")]
    [InlineData("mixed")]
    public async Task Png_frames_of_another_encoder_decode_exactly_whatever_the_filter(string prediction)
    {
        var random = new Random(11);
        var frame = Frame(24, 40, (r, c, ch) => (byte)(r * 9 + c * 5 + ch * 60 + random.Next(8)));

        var png = await Ffmpeg(frame, 24, 40, ["-pred", prediction, "-f", "image2pipe", "-c:v", "png", "pipe:1"]);

        Assert.Equal(frame, PngArchive.Decode(png, out var height, out var width));
        Assert.Equal((24, 40), (height, width));
        Assert.Equal(frame, PngArchive.Decode(PngArchive.Png(frame, 24, 40), out _, out _));
    }

    [Fact]
    public async Task Png_that_is_not_an_8_bit_rgb_frame_or_is_damaged_is_refused()
    {
        var frame = Frame(8, 8, (r, c, _) => (byte)(r + c));
        var png = PngArchive.Png(frame, 8, 8);
        var damaged = (byte[])png.Clone();
        damaged[^20] ^= 0xFF;
        var deep = await Ffmpeg(frame, 8, 8, ["-pix_fmt", "rgb48be", "-f", "image2pipe", "-c:v", "png", "pipe:1"]);

        Assert.Contains("CRC", Assert.Throws<InvalidDataException>(() => PngArchive.Decode(damaged, out _, out _)).Message, StringComparison.Ordinal);
        Assert.Contains("8-bit RGB", Assert.Throws<InvalidDataException>(() => PngArchive.Decode(deep, out _, out _)).Message, StringComparison.Ordinal);
        Assert.Throws<InvalidDataException>(() => PngArchive.Decode(png.AsSpan(0, png.Length - 12), out _, out _));
    }

    /// <summary>An RGB frame [H, W, 3] whose value at (row, column, channel) is <paramref name="value"/>.</summary>
    private static byte[] Frame(int height, int width, Func<int, int, int, byte> value)
    {
        var frame = new byte[height * width * 3];
        for (var r = 0; r < height; r++)
            for (var c = 0; c < width; c++)
                for (var ch = 0; ch < 3; ch++)
                    frame[(r * width + c) * 3 + ch] = value(r, c, ch);
        return frame;
    }

    private static async Task<byte[]> Ffmpeg(byte[] rgb, int height, int width, string[] output)
    {
        var ct = TestContext.Current.CancellationToken;
        var start = new ProcessStartInfo("ffmpeg") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", $"{width}x{height}", "-i", "pipe:0" }.Concat(output))
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var errors = process.StandardError.ReadToEndAsync(ct);
        using var bytes = new MemoryStream();
        var reading = process.StandardOutput.BaseStream.CopyToAsync(bytes, ct);
        await process.StandardInput.BaseStream.WriteAsync(rgb, ct);
        process.StandardInput.Close();
        await reading;
        await process.WaitForExitAsync(ct);
        Assert.True(process.ExitCode == 0, await errors);
        return bytes.ToArray();
    }
}

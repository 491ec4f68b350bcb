using System.Numerics;
using MLNode.Engines.Dit.Output;

namespace MLNode.Engines.Dit.Validation;

/// <summary>
/// Frame-by-frame agreement of a recomputed video with a delivered one: PSNR (<see cref="Psnr"/>), SSIM
/// (<see cref="Ssim"/>) and the Hamming distance of their pHashes (<see cref="PerceptualHash"/>), for the first
/// <see cref="Frames"/> frames of each.
/// </summary>
public sealed record VideoComparison(IReadOnlyList<double> PsnrDb, IReadOnlyList<double> Ssim, IReadOnlyList<int> PHashBits, bool Identical)
{
    public int Frames => PsnrDb.Count;

    public double MeanPsnrDb => PsnrDb.Average();

    public double MinSsim => Ssim.Min();

    public int MaxPHashBits => PHashBits.Max();

    /// <summary>Compares the first <paramref name="frames"/> frames of two videos of one frame size, frames in parallel.</summary>
    public static VideoComparison Of(WanVideo expected, WanVideo actual, int frames, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(actual);
        if (expected.Height != actual.Height || expected.Width != actual.Width)
            throw new ArgumentException($"frames of {expected.Width}×{expected.Height} and {actual.Width}×{actual.Height}", nameof(actual));
        if (frames <= 0 || frames > expected.FrameCount || frames > actual.FrameCount)
            throw new ArgumentOutOfRangeException(nameof(frames), $"{frames} frames of videos of {expected.FrameCount} and {actual.FrameCount}");
        var (psnr, ssim, phash) = (new double[frames], new double[frames], new int[frames]);
        var (h, w, size) = (expected.Height, expected.Width, expected.FrameBytes);
        Parallel.For(0, frames, new ParallelOptions { CancellationToken = ct }, f =>
        {
            var a = expected.Frames.AsSpan(f * size, size);
            var b = actual.Frames.AsSpan(f * size, size);
            psnr[f] = Psnr.Frame(a, b);
            ssim[f] = Validation.Ssim.Frame(a, b, h, w);
            phash[f] = Distance(PHash(a, h, w), PHash(b, h, w));
        });
        var identical = expected.Frames.AsSpan(0, frames * size).SequenceEqual(actual.Frames.AsSpan(0, frames * size));
        return new VideoComparison(psnr, ssim, phash, identical);
    }

    public static ulong PHash(ReadOnlySpan<byte> frame, int height, int width) =>
        PerceptualHash.PHash(PerceptualHash.Luma(frame, height, width), height, width);

    /// <summary>Hamming distance of two 64-bit hashes.</summary>
    public static int Distance(ulong a, ulong b) => BitOperations.PopCount(a ^ b);
}

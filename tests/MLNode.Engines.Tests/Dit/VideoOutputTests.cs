using System.Diagnostics;
using System.IO.Compression;
using MLNode.Engines.Dit;
using MLNode.Engines.Dit.Output;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Dit;

/// <summary>
/// The output forms of a finished video, on the wan-tiny pipeline's reference frames: the MP4 is byte-stable and decodes
/// to the job's frame count and size, the PNG zip is lossless, and the perceptual hashes behave as defined.
/// </summary>
public sealed class VideoOutputTests
{
    private static readonly WanVideo Reference = ReferenceVideo();

    [Fact]
    public async Task Mp4_is_the_same_bytes_every_time_and_has_every_frame()
    {
        var encoder = new VideoEncoder("ffmpeg");
        var token = TestContext.Current.CancellationToken;

        var first = await encoder.Mp4Async(Reference, 16, token);
        var second = await encoder.Mp4Async(Reference, 16, token);

        Assert.Equal(first, second);
        // Decoded back (lossy, yuv420p): the same number of 64×64 frames.
        var decoded = await Ffmpeg(first, ["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"], "mp4");
        Assert.Equal(Reference.Frames.Length, decoded.Length);
    }

    [Fact]
    public async Task Png_zip_is_lossless()
    {
        var zip = PngArchive.Zip(Reference);

        using var archive = new ZipArchive(new MemoryStream(zip));
        Assert.Equal(Reference.FrameCount, archive.Entries.Count);
        for (var f = 0; f < Reference.FrameCount; f++)
        {
            using var entry = archive.GetEntry($"frame_{f:D5}.png")!.Open();
            using var png = new MemoryStream();
            await entry.CopyToAsync(png, TestContext.Current.CancellationToken);
            var decoded = await Ffmpeg(png.ToArray(), ["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"], "png");
            Assert.Equal(Reference.Frames.AsSpan(f * Reference.FrameBytes, Reference.FrameBytes).ToArray(), decoded);
        }
        Assert.Equal(zip, PngArchive.Zip(Reference));
    }

    [Fact]
    public void Hashes_cover_the_frames_and_each_frame()
    {
        var hashes = VideoHashes.Of(Reference, mp4: [1, 2, 3]);

        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Reference.Frames)), hashes.FramesSha256);
        Assert.Equal("039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81", hashes.Mp4Sha256);
        Assert.Equal(Reference.FrameCount, hashes.PHashes.Count);
        Assert.All(hashes.PHashes.Concat(hashes.DHashes), h => Assert.Equal(16, h.Length));
    }

    [Fact]
    public void Perceptual_hashes_follow_their_definitions()
    {
        const int size = 64;
        var flat = Enumerable.Repeat(100.0, size * size).ToArray();
        var ramp = Enumerable.Range(0, size * size).Select(i => (double)(i % size)).ToArray();
        var random = new Random(7);
        var texture = Enumerable.Range(0, size * size).Select(_ => random.NextDouble() * 200).ToArray();
        var brighter = texture.Select(v => v + 40).ToArray();

        Assert.Equal(0ul, PerceptualHash.DHash(flat, size, size));
        // Brightening moves only DC, which the median ignores: the pHash stays; the negative image flips every bit but
        // DC's and the median coefficient's own (not above itself in either image).
        var hash = PerceptualHash.PHash(texture, size, size);
        Assert.Equal(hash, PerceptualHash.PHash(brighter, size, size));
        Assert.Equal(62, System.Numerics.BitOperations.PopCount(hash ^ PerceptualHash.PHash([.. texture.Select(v => 255 - v)], size, size)));
        // Brightness rising to the right: every cell brighter than its left neighbour.
        Assert.Equal(ulong.MaxValue, PerceptualHash.DHash(ramp, size, size));
    }

    private static WanVideo ReferenceVideo()
    {
        using var cfhw = WanTiny.Pipeline("video_u8_cfhw");
        using var frames = cfhw.permute(1, 2, 3, 0).to(ScalarType.Byte).contiguous();
        return new WanVideo(frames.bytes.ToArray(), (int)frames.shape[0], (int)frames.shape[1], (int)frames.shape[2]);
    }

    private static async Task<byte[]> Ffmpeg(byte[] input, string[] output, string inputFormat)
    {
        var file = Path.GetTempFileName();
        try
        {
            await File.WriteAllBytesAsync(file, input, TestContext.Current.CancellationToken);
            var start = new ProcessStartInfo("ffmpeg") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "-hide_banner", "-loglevel", "error", "-f", inputFormat == "png" ? "png_pipe" : inputFormat, "-i", file }.Concat(output))
                start.ArgumentList.Add(a);
            using var process = Process.Start(start)!;
            using var bytes = new MemoryStream();
            var errors = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            await process.StandardOutput.BaseStream.CopyToAsync(bytes, TestContext.Current.CancellationToken);
            await process.WaitForExitAsync(TestContext.Current.CancellationToken);
            Assert.True(process.ExitCode == 0, await errors);
            return bytes.ToArray();
        }
        finally
        {
            File.Delete(file);
        }
    }
}

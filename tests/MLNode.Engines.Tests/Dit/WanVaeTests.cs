using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Engines.Dit.Vae;
using MLNode.Runtime.Checkpoints;
using MLNode.Tests;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Dit;

/// <summary>
/// The Wan VAE decoder and the uint8 conversion against wan-tiny: <c>reference_tensors.safetensors</c> holds the final
/// latent of the 4-step run (<c>sample_step3_latent</c>), diffusers' AutoencoderKLWan decode of it in float32
/// (<c>decoded_video_float</c>, [3, 9, 64, 64]) and its uint8 frames; <c>pipeline_tensors.safetensors</c> holds the
/// end-to-end job's final latent and frames.
/// </summary>
public sealed class WanVaeTests
{
    // The reference ran diffusers' float32 decode on an H100 with PyTorch's defaults, under which cuDNN runs the
    // convolutions in TF32 (10-bit mantissa; spec §3.3, item 4); this decoder computes true float32. The difference is
    // max 1.6e-3, mean 2.2e-4 on a video in [−1, 1], the size of TF32's own error: the same decode with every conv
    // input rounded to TF32 moves by max 1.9e-3–3.0e-3, mean 2.5e-4–3.6e-4 (by rounding mode) from float32. So the
    // issue's 1e-4 cannot hold against this reference; the bounds sit above TF32's error and far below a wrong decoder:
    // without the causal cache, with one cached frame instead of two, with the time_conv halves swapped or with
    // attention scaled by 1/C instead of 1/√C the difference is max 6e-2–1.4 and mean 1.1e-2–0.29.
    private const double VideoMaxTolerance = 5e-3;
    private const double VideoMeanTolerance = 5e-4;

    // Truncation to uint8 turns a tiny float difference into a whole level wherever a value sits near a level
    // boundary, so frames can only be compared within one level.
    private const int LevelTolerance = 1;

    private static readonly WanVaeDecoder Vae = LoadOnOwnThread();

    [Fact]
    public void Decoded_video_matches_the_tf32_reference_within_its_rounding()
    {
        using var latent = Reference("reference_tensors.safetensors", "sample_step3_latent");
        using var reference = Reference("reference_tensors.safetensors", "decoded_video_float");

        using var video = Vae.Decode(latent, TestContext.Current.CancellationToken);

        Assert.Equal(reference.shape, video.shape);
        using var difference = (video - reference).abs();
        var (worst, mean) = (difference.max().item<float>(), difference.mean().item<float>());
        TestContext.Current.TestOutputHelper?.WriteLine($"decoded video: max |Δ| {worst:E2}, mean |Δ| {mean:E2}");
        Assert.True(worst <= VideoMaxTolerance, $"max |Δ| {worst} > {VideoMaxTolerance}");
        Assert.True(mean <= VideoMeanTolerance, $"mean |Δ| {mean} > {VideoMeanTolerance}");
    }

    [Fact]
    public void Frames_are_within_one_level_of_the_reference_uint8_video()
    {
        using var latent = Reference("reference_tensors.safetensors", "sample_step3_latent");
        using var reference = Reference("reference_tensors.safetensors", "decoded_video_u8");

        using var video = Vae.Decode(latent, TestContext.Current.CancellationToken);
        using var frames = VideoQuantizer.ToUInt8(video);

        AssertWithinOneLevel(reference, frames);
    }

    [Fact]
    public void Pipeline_final_latent_decodes_to_the_pipeline_frames()
    {
        using var latent = Reference("pipeline_tensors.safetensors", "step3_latent");
        using var reference = Reference("pipeline_tensors.safetensors", "video_u8_cfhw");

        using var video = Vae.Decode(latent, TestContext.Current.CancellationToken);
        using var frames = VideoQuantizer.ToUInt8(video);

        AssertWithinOneLevel(reference, frames);
    }

    [Fact]
    public void Decoding_is_causal_frame_by_frame()
    {
        // Video frames depend only on the latent frames up to theirs: the first latent frame alone gives the first
        // video frame, the first two give the first 1 + 4 — bit for bit the same as in the whole clip's decode.
        using var latent = Reference("reference_tensors.safetensors", "sample_step3_latent");
        using var whole = Vae.Decode(latent, TestContext.Current.CancellationToken);

        using var first = Vae.Decode(latent.narrow(1, 0, 1), TestContext.Current.CancellationToken);
        using var firstTwo = Vae.Decode(latent.narrow(1, 0, 2), TestContext.Current.CancellationToken);

        Assert.Equal(1, first.shape[1]);
        Assert.Equal(5, firstTwo.shape[1]);
        Assert.Equal(9, Vae.VideoFrames(3));
        Assert.True(first.eq(whole.narrow(1, 0, 1)).all().item<bool>());
        Assert.True(firstTwo.eq(whole.narrow(1, 0, 5)).all().item<bool>());
    }

    [Fact]
    public void Quantizer_reproduces_the_reference_uint8_frames_exactly()
    {
        using var decoded = Reference("reference_tensors.safetensors", "decoded_video_float");
        using var reference = Reference("reference_tensors.safetensors", "decoded_video_u8");

        using var frames = VideoQuantizer.ToUInt8(decoded);

        Assert.Equal(ScalarType.Byte, frames.dtype);
        Assert.Equal(reference.shape, frames.shape);
        Assert.True(frames.to(ScalarType.Float32).eq(reference).all().item<bool>());
    }

    [Theory]
    [InlineData(-1f, 0)]
    [InlineData(-3f, 0)]
    [InlineData(-0.999f, 0)] // 0.1275 truncates to 0
    [InlineData(0f, 127)] // 127.5 truncates to 127, not 128
    [InlineData(0.5f, 191)] // 191.25
    [InlineData(0.99f, 253)] // 253.725 truncates to 253, rounding would give 254
    [InlineData(1f, 255)]
    [InlineData(7f, 255)]
    public void Quantizer_truncates_like_the_official_save_video(float value, byte level)
    {
        using var video = tensor(new[] { value });

        using var frames = VideoQuantizer.ToUInt8(video);

        Assert.Equal(level, frames[0].item<byte>());
    }

    [Fact]
    public void Config_of_the_Wan22_residual_vae_is_refused_naming_the_field()
    {
        var folder = Directory.CreateTempSubdirectory("wan-vae-config");
        try
        {
            var path = Path.Combine(folder.FullName, "config.json");
            var wan21 = File.ReadAllText(Fixtures.Path("wan", "wan-tiny", "vae", "config.json"));
            File.WriteAllText(path, wan21.Replace("\"is_residual\": false", "\"is_residual\": true", StringComparison.Ordinal));

            var error = Assert.Throws<InvalidDataException>(() => WanVaeConfig.FromFile(path));

            Assert.Contains("'is_residual'", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void Config_reads_the_tiny_vae()
    {
        var config = WanVaeConfig.FromFile(Fixtures.Path("wan", "wan-tiny", "vae", "config.json"));

        Assert.Equal(16, config.DecoderBaseDim);
        Assert.Equal(16, config.ZDim);
        Assert.Equal([1, 2, 4, 4], config.DimMult);
        Assert.Equal([false, true, true], config.TemperalDownsample);
        Assert.Equal(1, config.NumResBlocks);
        Assert.Equal(-0.7571, config.LatentsMean[0]);
        Assert.Equal(1.916, config.LatentsStd[^1]);
    }

    private static void AssertWithinOneLevel(Tensor reference, Tensor frames)
    {
        Assert.Equal(reference.shape, frames.shape);
        using var difference = (frames.to(ScalarType.Float32) - reference).abs();
        var worst = difference.max().item<float>();
        var differing = difference.gt(0).sum().item<long>();
        TestContext.Current.TestOutputHelper?.WriteLine($"uint8 frames: {differing} of {reference.numel()} values differ, by at most {worst}");
        Assert.True(worst <= LevelTolerance, $"max |Δ| {worst} levels > {LevelTolerance} ({differing} of {reference.numel()} values differ)");
    }

    private static Tensor Reference(string file, string name)
    {
        using var tensors = SafetensorsFile.Open(Fixtures.Path("wan", "wan-tiny", file));
        return tensors.Load(name, CPU);
    }

    /// <summary>
    /// Loads wan-tiny's VAE on a new thread without the caller's execution context: TorchSharp would otherwise register
    /// the weights in whatever dispose scope the calling test thread has open (see TinyModels).
    /// </summary>
    private static WanVaeDecoder LoadOnOwnThread()
    {
        WanVaeDecoder? loaded = null;
        Exception? failure = null;
        using (ExecutionContext.SuppressFlow())
        {
            var loader = new Thread(() =>
            {
                try
                {
                    loaded = WanVaeDecoder.Load(Fixtures.Path("wan", "wan-tiny", "vae"), CPU, NullLogger.Instance);
                }
                catch (Exception e)
                {
                    failure = e;
                }
            });
            loader.Start();
            loader.Join();
        }
        return loaded ?? throw new InvalidOperationException("wan-tiny's VAE did not load", failure);
    }
}

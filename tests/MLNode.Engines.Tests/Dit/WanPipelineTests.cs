using MLNode.Engines.Dit;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Dit;

/// <summary>
/// pipeline_reference.json's job end to end through <see cref="WanPipeline"/> on the CPU in float32: its prompt in, its
/// uint8 frames out, compared with the reference run's <c>video_u8_cfhw</c>; and its noise, which the reference drew with
/// torch's CUDA <c>randn</c> (seed 42), from <c>LatentNoise</c>.
/// </summary>
public sealed class WanPipelineTests
{
    // The C# Philox/Box–Muller reference evaluates log, sin and cos on the CPU where the GPU used its fast intrinsics:
    // a few float32 ulps (LatentNoise promises "a few 1e-6"); a different seed, offset or element order misses by O(1).
    private const float NoiseTolerance = 1e-5f;

    // The reference ran its Conv3d (patch embedding, VAE) in TF32 on the GPU; this run is true float32 throughout, so the
    // final float video differs by a few 1e-4 (see WanVaeTests), and truncation to uint8 turns that into one level
    // wherever a value sits near a level boundary. A wrong step, expert, guidance or noise moves pixels by tens of levels.
    private const int LevelTolerance = 1;

    [Fact]
    public void Portable_noise_is_the_references_cuda_randn()
    {
        var spec = WanTiny.ReferenceSpec();

        using var noise = WanPipeline.InitialNoise(spec, WanTiny.Facts(), CPU);

        using var expected = WanTiny.Pipeline("noise");
        Assert.Equal(expected.shape, noise.shape);
        var worst = (noise - expected).abs().max().item<float>();
        TestContext.Current.TestOutputHelper?.WriteLine($"noise: max |Δ| {worst:E2} over {expected.numel()} values");
        Assert.True(worst <= NoiseTolerance, $"max |Δ| {worst} > {NoiseTolerance}");
    }

    [Fact]
    public void Reference_job_from_its_prompt_gives_the_reference_frames()
    {
        var spec = WanTiny.ReferenceSpec();
        var pipeline = WanTiny.CpuPipeline(WanTiny.Numerics.Float32);
        var steps = new List<WanStepProgress>();

        var video = pipeline.Generate(spec, WanTiny.Facts(), steps.Add, null, TestContext.Current.CancellationToken).Video;

        Assert.Equal([1, 2, 3, 4], steps.Select(s => s.Step));
        Assert.All(steps, s => Assert.Equal(4, s.Steps));
        Assert.Equal(0, steps[^1].Remaining.Ticks);
        AssertWithinOneLevel(video);
    }

    [Fact]
    public void A_cancelled_job_stops_before_the_next_step()
    {
        var pipeline = WanTiny.CpuPipeline(WanTiny.Numerics.Float32);
        using var cancel = new CancellationTokenSource();
        var seen = 0;

        Assert.ThrowsAny<OperationCanceledException>(() => pipeline.Generate(WanTiny.ReferenceSpec(), WanTiny.Facts(), _ =>
        {
            seen++;
            cancel.Cancel();
        }, null, cancel.Token));
        Assert.Equal(1, seen);
    }

    /// <summary>Asserts <paramref name="video"/> ([F, H, W, 3] bytes) is within one level of the reference's [3, F, H, W] frames.</summary>
    private static void AssertWithinOneLevel(WanVideo video)
    {
        using var expected = WanTiny.Pipeline("video_u8_cfhw");
        using var frames = tensor(video.Frames, [video.FrameCount, video.Height, video.Width, WanVideo.Channels]).permute(3, 0, 1, 2);
        Assert.Equal(expected.shape, frames.shape);
        using var difference = (frames.to(ScalarType.Float32) - expected).abs();
        var worst = difference.max().item<float>();
        var differing = difference.gt(0).sum().item<long>();
        TestContext.Current.TestOutputHelper?.WriteLine($"uint8 frames: {differing} of {expected.numel()} values differ, by at most {worst}");
        Assert.True(worst <= LevelTolerance, $"max |Δ| {worst} levels > {LevelTolerance} ({differing} of {expected.numel()} differ)");
    }
}

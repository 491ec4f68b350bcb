using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Engines.Dit;
using MLNode.Engines.Dit.Vae;
using MLNode.Tests;
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

    private static readonly JsonElement Reference = ReadJson(Fixtures.Path("wan", "wan-tiny", "pipeline_reference.json"));

    [Fact]
    public void Portable_noise_is_the_references_cuda_randn()
    {
        var spec = ReferenceSpec();

        using var noise = WanPipeline.InitialNoise(spec, Facts(), CPU);

        using var expected = WanTiny.Pipeline("noise");
        Assert.Equal(expected.shape, noise.shape);
        var worst = (noise - expected).abs().max().item<float>();
        TestContext.Current.TestOutputHelper?.WriteLine($"noise: max |Δ| {worst:E2} over {expected.numel()} values");
        Assert.True(worst <= NoiseTolerance, $"max |Δ| {worst} > {NoiseTolerance}");
    }

    [Fact]
    public void Reference_job_from_its_prompt_gives_the_reference_frames()
    {
        var spec = ReferenceSpec();
        var pipeline = new WanPipeline(WanTiny.TextEncoder, WanTiny.Expert(WanTiny.HighNoiseExpert, WanTiny.Numerics.Float32),
            WanTiny.Expert(WanTiny.LowNoiseExpert, WanTiny.Numerics.Float32), Vae.Value, CPU);
        var steps = new List<WanStepProgress>();

        var video = pipeline.Generate(spec, Facts(), steps.Add, TestContext.Current.CancellationToken);

        Assert.Equal([1, 2, 3, 4], steps.Select(s => s.Step));
        Assert.All(steps, s => Assert.Equal(4, s.Steps));
        Assert.Equal(0, steps[^1].Remaining.Ticks);
        AssertWithinOneLevel(video);
    }

    [Fact]
    public void A_cancelled_job_stops_before_the_next_step()
    {
        var pipeline = new WanPipeline(WanTiny.TextEncoder, WanTiny.Expert(WanTiny.HighNoiseExpert, WanTiny.Numerics.Float32),
            WanTiny.Expert(WanTiny.LowNoiseExpert, WanTiny.Numerics.Float32), Vae.Value, CPU);
        using var cancel = new CancellationTokenSource();
        var seen = 0;

        Assert.ThrowsAny<OperationCanceledException>(() => pipeline.Generate(ReferenceSpec(), Facts(), _ =>
        {
            seen++;
            cancel.Cancel();
        }, cancel.Token));
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

    /// <summary>The reference job as a spec: its prompts, size, steps, shift, boundary, guidance and seed, the official grid.</summary>
    private static WanJobSpec ReferenceSpec()
    {
        var job = Reference.GetProperty("job");
        var planner = new WanJobPlanner(Facts(), new WanJobDefaults(), new WanJobLimits());
        return planner.Plan(new WanJobRequest(
            job.GetProperty("prompt").GetString()!,
            job.GetProperty("negative_prompt").GetString(),
            job.GetProperty("width").GetInt32(),
            job.GetProperty("height").GetInt32(),
            job.GetProperty("num_frames").GetInt32(),
            job.GetProperty("fps").GetInt32(),
            job.GetProperty("num_inference_steps").GetInt32(),
            job.GetProperty("flow_shift").GetDouble(),
            job.GetProperty("boundary_ratio").GetDouble(),
            job.GetProperty("guidance_scale_high_noise").GetDouble(),
            job.GetProperty("guidance_scale_low_noise").GetDouble(),
            WanJobSpec.UniPcOfficial,
            job.GetProperty("seed").GetUInt64()));
    }

    private static WanModelFacts Facts() => WanModelFacts.Of("wan-tiny", "fixture", [], "float32",
        WanTransformerConfig.FromFile(Fixtures.Path("wan", "wan-tiny", "transformer", "config.json")),
        WanVaeConfig.FromFile(Fixtures.Path("wan", "wan-tiny", "vae", "config.json")));

    private static readonly Lazy<WanVaeDecoder> Vae = new(() =>
    {
        WanVaeDecoder? loaded = null;
        // Loaded without the test thread's execution context, so no test's dispose scope owns the weights (see WanTiny).
        using (ExecutionContext.SuppressFlow())
        {
            var loader = new Thread(() => loaded = WanVaeDecoder.Load(Fixtures.Path("wan", "wan-tiny", "vae"), CPU, NullLogger.Instance));
            loader.Start();
            loader.Join();
        }
        return loaded ?? throw new InvalidOperationException("wan-tiny's VAE did not load");
    });

    private static JsonElement ReadJson(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        return document.RootElement.Clone();
    }
}

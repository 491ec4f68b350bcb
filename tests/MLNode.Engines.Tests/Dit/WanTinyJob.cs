using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Engines.Dit;
using MLNode.Engines.Dit.Output;
using MLNode.Engines.Dit.Poc;
using MLNode.Engines.Hosting;
using MLNode.Protocol.Diffusion;
using MLNode.Protocol.Poc;
using MLNode.Runtime.Registry;
using MLNode.Tests;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Dit;

/// <summary>
/// pipeline_reference.json's job run once on the CPU in float32 by a wan-tiny <see cref="WanExecutor"/>, with all an
/// executor keeps and delivers: the final latent x0 and the trajectory commitment, the canonical frames, the MP4 (16 fps,
/// as the spec says) and the hashes a completed job reports.
/// </summary>
public sealed class WanTinyJob
{
    private static readonly Lazy<WanTinyJob> Job = new(() => WanTiny.OnOwnThread(Run, "reference job"));

    private WanTinyJob(WanExecutor executor, WanJobSpec spec, Tensor finalLatent, TrajectoryCommitment trajectory, WanVideo video, byte[] mp4)
    {
        (Executor, Spec, FinalLatent, Trajectory, Video, Mp4) = (executor, spec, finalLatent, trajectory, video, mp4);
        Hashes = VideoHashes.Of(video, mp4);
    }

    public static WanTinyJob Reference => Job.Value;

    public WanExecutor Executor { get; }
    public WanJobSpec Spec { get; }

    /// <summary>x0 [16, 3, 8, 8] on the CPU; shared, so never disposed by a test.</summary>
    public Tensor FinalLatent { get; }

    public TrajectoryCommitment Trajectory { get; }

    public WanVideo Video { get; }
    public byte[] Mp4 { get; }
    public VideoHashes Hashes { get; }

    /// <summary>A wan-tiny executor over the shared float32 experts, text encoder and VAE, planning with wan-tiny's facts.</summary>
    public static WanExecutor NewExecutor()
    {
        var pipeline = WanTiny.CpuPipeline(WanTiny.Numerics.Float32);
        var card = new ModelCard("wan-tiny", Modality.Dit, WanEngine.Architecture, "float32", "cpu", Fixtures.Path("wan", "wan-tiny"), new ModelLimits(512, 1), 0,
            new Dictionary<string, double>());
        var poc = new WanPocProver(pipeline.HighNoiseExpert, pipeline.LowNoiseExpert, WanPocSchedule.T2VA14B, new WanPocGeometry(8, 8, 16), NullLogger.Instance);
        return new WanExecutor(card, pipeline, new WanJobPlanner(WanTiny.Facts(), new WanJobDefaults(), new WanJobLimits()), poc);
    }

    private static WanTinyJob Run()
    {
        var executor = NewExecutor();
        var spec = WanTiny.ReferenceSpec();
        var denoised = executor.Pipeline.Denoise(spec, executor.Planner.Model, null, null, CancellationToken.None);
        var video = executor.Pipeline.DecodeFrames(denoised.FinalLatent, CancellationToken.None);
        var mp4 = new VideoEncoder("ffmpeg").Mp4Async(video, spec.Fps, CancellationToken.None).GetAwaiter().GetResult();
        return new WanTinyJob(executor, spec, denoised.FinalLatent, denoised.Trajectory, video, mp4);
    }
}

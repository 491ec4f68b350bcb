using MLNode.Engines.Dit.Trajectory;
using MLNode.Engines.Hosting;
using static TorchSharp.torch;

namespace MLNode.Engines.Dit;

/// <summary>
/// A loaded text-to-video model. Requests become specs through <see cref="Planner"/> (defaults filled in, fields checked,
/// price known before running); <see cref="GenerateAsync"/> runs one spec to its canonical frames and the commitment to
/// its trajectory.
/// </summary>
public interface IVideoExecutor : IModelExecutor
{
    WanJobPlanner Planner { get; }

    /// <param name="onStep">called after every denoising step, on the job's thread; may be null.</param>
    /// <param name="states">where the sampler states a step challenge replays are kept; null keeps none.</param>
    Task<WanGeneration> GenerateAsync(WanJobSpec spec, Action<WanStepProgress>? onStep, StepStateStore? states, CancellationToken ct);

    /// <summary>
    /// The canonical frames of a final latent [C, T, h, w] (float32, any device): the VAE decode and uint8 truncation a
    /// job ends with. T may be a prefix of a job's latent frames (the VAE is causal; see <see cref="WanPipeline.DecodeFrames"/>).
    /// </summary>
    Task<WanVideo> DecodeAsync(Tensor latent, CancellationToken ct);
}

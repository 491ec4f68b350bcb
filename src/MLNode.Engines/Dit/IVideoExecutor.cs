using MLNode.Engines.Dit.Trajectory;
using MLNode.Engines.Hosting;
using MLNode.Protocol.Diffusion;
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

    /// <summary>
    /// Replays the steps <paramref name="reveal"/> answers for (<paramref name="beacon"/>, <paramref name="count"/>) of
    /// another executor's <paramref name="commitment"/> to <paramref name="spec"/> on this model
    /// (<see cref="StepRevealVerifier.Verify"/>); a <see cref="FormatException"/> when the reveal lacks a tensor it must carry.
    /// </summary>
    Task<RevealVerification> VerifyRevealAsync(WanJobSpec spec, TrajectoryCommitment commitment, RevealBundle reveal, string beacon, int count, CancellationToken ct);
}

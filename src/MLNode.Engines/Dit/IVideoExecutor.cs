using MLNode.Engines.Dit.Trajectory;
using MLNode.Engines.Hosting;

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
}

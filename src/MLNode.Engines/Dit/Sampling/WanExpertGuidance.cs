using MLNode.Protocol.Poc;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Dit.Sampling;

/// <summary>
/// Wan2.2 A14B's split of the sampling steps between its two experts, each with its own classifier-free guidance
/// scale (official <c>_prepare_model_for_timestep</c>; diffusers' guidance_scale / guidance_scale_2): the high-noise
/// expert and <see cref="GuidanceHighNoise"/> while the timestep is at or above the boundary, the low-noise expert
/// and <see cref="GuidanceLowNoise"/> below it.
/// </summary>
/// <param name="BoundaryTimestep">The smallest integer timestep the high-noise expert runs (875 for ratio 0.875).</param>
public sealed record WanExpertGuidance(int BoundaryTimestep, double GuidanceHighNoise, double GuidanceLowNoise)
{
    /// <summary>
    /// From a boundary ratio: the reference compares the integer timestep with ratio · 1000 as a float, so the
    /// high-noise expert runs from the ceiling of that product.
    /// </summary>
    public static WanExpertGuidance FromBoundaryRatio(double boundaryRatio, double guidanceHighNoise, double guidanceLowNoise)
    {
        if (boundaryRatio is < 0 or > 1 || double.IsNaN(boundaryRatio))
            throw new ArgumentOutOfRangeException(nameof(boundaryRatio), boundaryRatio, "must lie in [0, 1]");
        return new((int)Math.Ceiling(boundaryRatio * FlowSigmaSchedule.TrainTimesteps), guidanceHighNoise, guidanceLowNoise);
    }

    /// <summary><see cref="WanRouting.HighNoiseExpert"/> or <see cref="WanRouting.LowNoiseExpert"/>.</summary>
    public int Expert(int timestep) => WanRouting.Expert(timestep, BoundaryTimestep);

    public double Guidance(int timestep) => Expert(timestep) == WanRouting.HighNoiseExpert ? GuidanceHighNoise : GuidanceLowNoise;

    /// <summary>The guided velocity v_u + g·(v_c − v_u) of the conditional and unconditional (negative-prompt) forwards.</summary>
    public Tensor Guide(Tensor conditional, Tensor unconditional, int timestep)
    {
        ArgumentNullException.ThrowIfNull(conditional);
        ArgumentNullException.ThrowIfNull(unconditional);
        using var scope = NewDisposeScope();
        return (unconditional + (conditional - unconditional) * Guidance(timestep)).MoveToOuterDisposeScope();
    }
}

namespace MLNode.Engines.Dit.Sampling;

/// <summary>Which flow-matching grid a sampler runs on; the two differ in their first sigma and so in some timesteps.</summary>
public enum FlowSigmaGrid
{
    /// <summary>
    /// Wan's own FlowUniPCMultistepScheduler (wan/utils/fm_solvers_unipc.py): <c>linspace(σ_max, 0, S+1)[:-1]</c>
    /// with σ_max = float32(0.999), the last training sigma.
    /// </summary>
    WanOfficial,

    /// <summary>
    /// diffusers' UniPCMultistepScheduler with <c>use_flow_sigmas</c>: <c>linspace(1, 1/1000, S+1)[:-1]</c>, the
    /// first shifted sigma lowered by 1e-6 when it is within 1e-6 of 1 (so log(1 − σ) stays finite).
    /// </summary>
    Diffusers,
}

/// <summary>
/// The sigmas and integer timesteps of S flow-matching sampling steps: σ' = s·σ / (1 + (s − 1)·σ) for shift s over
/// the grid, computed in float64 as numpy does; timesteps are <c>int64(σ'·1000)</c>, which truncates; the sigmas are
/// kept as float32 with a final 0. The model sees the integer timestep while the solver uses the float sigma.
/// </summary>
public sealed class FlowSigmaSchedule
{
    public const int TrainTimesteps = 1000;

    private FlowSigmaSchedule(float[] sigmas, int[] timesteps, double shift, FlowSigmaGrid grid)
    {
        Sigmas = sigmas;
        Timesteps = timesteps;
        Shift = shift;
        Grid = grid;
    }

    /// <summary>S + 1 float32 sigmas, the last 0: step k goes from σ[k] to σ[k+1].</summary>
    public IReadOnlyList<float> Sigmas { get; }

    /// <summary>S integer timesteps, the model input of each step.</summary>
    public IReadOnlyList<int> Timesteps { get; }

    public double Shift { get; }
    public FlowSigmaGrid Grid { get; }
    public int Steps => Timesteps.Count;

    public static FlowSigmaSchedule Create(int steps, double shift, FlowSigmaGrid grid = FlowSigmaGrid.WanOfficial)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        if (!(shift > 0) || double.IsInfinity(shift)) throw new ArgumentOutOfRangeException(nameof(shift), shift, "must be a positive number");
        var unshifted = grid switch
        {
            // σ_max is float32(1 − 1/1000) read back as a double (0.9990000128746033), σ_min is 0.
            FlowSigmaGrid.WanOfficial => Linspace((float)(1.0 - 1.0 / TrainTimesteps), 0.0, steps + 1),
            FlowSigmaGrid.Diffusers => Linspace(1.0, 1.0 / TrainTimesteps, steps + 1),
            _ => throw new ArgumentOutOfRangeException(nameof(grid), grid, "unknown sigma grid"),
        };
        var shifted = unshifted.Take(steps).Select(sigma => shift * sigma / (1 + (shift - 1) * sigma)).ToArray();
        if (grid == FlowSigmaGrid.Diffusers && Math.Abs(shifted[0] - 1) < 1e-6) shifted[0] -= 1e-6;
        return new FlowSigmaSchedule(
            [.. shifted.Select(sigma => (float)sigma), 0f],
            shifted.Select(sigma => (int)(sigma * TrainTimesteps)).ToArray(),
            shift,
            grid);
    }

    /// <summary>numpy's linspace in float64: start + i·step with step = (stop − start)/(n − 1), the last value exactly stop.</summary>
    private static double[] Linspace(double start, double stop, int count)
    {
        var step = (stop - start) / (count - 1);
        var values = new double[count];
        for (var i = 0; i < count; i++) values[i] = i * step + start;
        values[^1] = stop;
        return values;
    }
}

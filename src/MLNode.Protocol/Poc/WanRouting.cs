using System.Collections.Immutable;

namespace MLNode.Protocol.Poc;

/// <summary>
/// The timestep grid a Wan2.2 PoC nonce draws from and the boundary that splits it between the two experts
/// (docs/wan-poc-routing.md).
/// </summary>
/// <param name="Timesteps">Integer timesteps in [0, 1000), drawn uniformly by grid index.</param>
/// <param name="Boundary">The high-noise expert runs at t ≥ Boundary (boundary ratio × 1000 training timesteps).</param>
public sealed record WanPocSchedule(ImmutableArray<int> Timesteps, int Boundary)
{
    public const int TrainTimesteps = 1000;

    /// <summary>Most grid entries a schedule may have (the native kernel passes the grid by value).</summary>
    public const int MaxTimesteps = 256;

    /// <summary>
    /// Wan2.2-T2V-A14B as the official sampler runs it: the FlowUniPC grid of 40 steps at shift 12 (26 steps at
    /// t ≥ 875 on the high-noise expert, 14 on the low-noise one) and boundary 0.875 · 1000.
    /// </summary>
    public static WanPocSchedule T2VA14B { get; } = new(
    [
        999, 997, 995, 993, 990, 988, 985, 982, 979, 976, 972, 969, 965, 961, 956, 952, 947, 941, 936, 929,
        922, 915, 907, 898, 888, 877, 865, 852, 837, 819, 799, 776, 749, 717, 678, 631, 571, 492, 386, 235,
    ], 875);

    public ImmutableArray<int> Timesteps { get; } = Validate(Timesteps);

    public int Boundary { get; } = Boundary is >= 0 and <= TrainTimesteps
        ? Boundary
        : throw new ArgumentOutOfRangeException(nameof(Boundary), Boundary, $"must be in [0, {TrainTimesteps}]");

    private static ImmutableArray<int> Validate(ImmutableArray<int> timesteps)
    {
        if (timesteps.IsDefaultOrEmpty || timesteps.Length > MaxTimesteps)
            throw new ArgumentException($"needs 1 to {MaxTimesteps} timesteps", nameof(Timesteps));
        foreach (var t in timesteps)
            if (t is < 0 or >= TrainTimesteps)
                throw new ArgumentException($"timestep {t} is outside [0, {TrainTimesteps})", nameof(Timesteps));
        return timesteps;
    }
}

/// <summary>Nonce n's timestep and the expert that runs it (0: high-noise, 1: low-noise).</summary>
public readonly record struct WanRoute(int Timestep, int Expert);

/// <summary>
/// Seeded expert routing for Wan2.2 PoC (docs/wan-poc-routing.md): every nonce gets a timestep from the
/// schedule's grid, and the expert follows from it as in the official sampler. Integers only, so every
/// implementation agrees bit for bit.
/// </summary>
public static class WanRouting
{
    /// <summary>The high-noise expert (diffusers <c>transformer</c>), which the sampler runs first.</summary>
    public const int HighNoiseExpert = 0;

    /// <summary>The low-noise expert (diffusers <c>transformer_2</c>).</summary>
    public const int LowNoiseExpert = 1;

    /// <summary><c>seed32("{BH}_{PK}_nonce_{n}_wan_t")</c>.</summary>
    public static uint Seed(string blockHash, string publicKey, long nonce) =>
        PocSeeds.Seed32(FormattableString.Invariant($"{blockHash}_{publicKey}_nonce_{nonce}_wan_t"));

    /// <summary>
    /// Grid index floor(h · S / 2^32) with h = mix(0, seed): the hash as a fraction of 2^32 scaled to the S grid
    /// entries, exact in 64-bit integers.
    /// </summary>
    public static int TimestepIndex(uint seed, int count) => (int)(((ulong)Murmur3.Mix(0, seed) * (uint)count) >> 32);

    public static int Expert(int timestep, int boundary) => timestep >= boundary ? HighNoiseExpert : LowNoiseExpert;

    public static WanRoute Route(uint seed, WanPocSchedule schedule)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        var timestep = schedule.Timesteps[TimestepIndex(seed, schedule.Timesteps.Length)];
        return new WanRoute(timestep, Expert(timestep, schedule.Boundary));
    }

    /// <summary>
    /// The stable partition of a batch by expert: <c>order[j]</c> is the batch row in grouped slot j, the
    /// high-noise rows first in batch order, then the low-noise rows in batch order.
    /// </summary>
    public static int[] GroupOrder(ReadOnlySpan<int> experts, out int highNoiseRows)
    {
        var order = new int[experts.Length];
        highNoiseRows = 0;
        foreach (var expert in experts)
            if (expert == HighNoiseExpert) highNoiseRows++;
        int high = 0, low = highNoiseRows;
        for (var row = 0; row < experts.Length; row++)
            order[experts[row] == HighNoiseExpert ? high++ : low++] = row;
        return order;
    }
}

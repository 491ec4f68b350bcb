using MLNode.Protocol.Poc;
using MLNode.Runtime.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Runtime.Diffusion;

/// <summary>
/// A batch of Wan2.2 PoC nonces grouped by expert (docs/wan-poc-routing.md §4): grouped slot j holds batch row
/// <see cref="Order"/>[j]; the high-noise expert's rows fill slots [0, <see cref="HighNoiseRows"/>), the
/// low-noise expert's the rest, each in batch order.
/// </summary>
public sealed class ExpertGroups(Tensor order, int highNoiseRows) : IDisposable
{
    /// <summary>int64 [B] on the batch's device.</summary>
    public Tensor Order { get; } = order;

    public int HighNoiseRows { get; } = highNoiseRows;

    public int LowNoiseRows => (int)Order.numel() - HighNoiseRows;

    /// <summary>The contiguous rows of <paramref name="grouped"/> (in grouped order) that <paramref name="expert"/> runs on.</summary>
    public Tensor Slice(Tensor grouped, int expert) => expert switch
    {
        WanRouting.HighNoiseExpert => grouped.narrow(0, 0, HighNoiseRows),
        WanRouting.LowNoiseExpert => grouped.narrow(0, HighNoiseRows, LowNoiseRows),
        _ => throw new ArgumentOutOfRangeException(nameof(expert), expert, "Wan2.2 has experts 0 (high-noise) and 1 (low-noise)"),
    };

    public void Dispose() => Order.Dispose();
}

/// <summary>
/// Seeded expert routing for a batch of Wan2.2 PoC nonces: the native kernels on a GPU, the C# references
/// (<see cref="WanRouting"/>, index_select / index_copy_) elsewhere; both give the same integers and bits.
/// </summary>
public static class ExpertRouting
{
    /// <summary>
    /// Timesteps and experts (int64 [B] on <paramref name="device"/>) of the nonces whose seeds
    /// (<see cref="WanRouting.Seed"/>) are <paramref name="seeds"/>.
    /// </summary>
    public static (Tensor Timesteps, Tensor Experts) Route(ReadOnlySpan<uint> seeds, WanPocSchedule schedule, Device device)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        if (seeds.IsEmpty) throw new ArgumentException("a batch needs at least one nonce", nameof(seeds));
        if (device.type == DeviceType.CUDA && NativeKernels.IsAvailable && seeds.Length <= NativeKernels.WanRoutingMaxBatch)
        {
            using var seedBits = NativeKernels.SeedTensor(seeds, device);
            var timesteps = empty(seeds.Length, ScalarType.Int64, device);
            var experts = empty(seeds.Length, ScalarType.Int64, device);
            NativeKernels.WanRoutingDerive(seedBits, schedule.Timesteps.AsSpan(), schedule.Boundary, timesteps, experts);
            return (timesteps, experts);
        }
        var routes = seeds.ToArray().Select(s => WanRouting.Route(s, schedule)).ToArray();
        return (tensor(routes.Select(r => (long)r.Timestep).ToArray(), ScalarType.Int64, device),
            tensor(routes.Select(r => (long)r.Expert).ToArray(), ScalarType.Int64, device));
    }

    /// <summary>Groups a batch by its experts (int64 [B]); reading the two counts waits for the device.</summary>
    public static ExpertGroups Group(Tensor experts)
    {
        if (NativeKernels.Handles(experts) && experts.numel() <= NativeKernels.WanRoutingMaxBatch)
        {
            using var source = experts.contiguous();
            var order = empty(experts.numel(), ScalarType.Int64, experts.device);
            using var counts = empty(2, ScalarType.Int64, experts.device);
            NativeKernels.WanRoutingGroup(source, order, counts);
            using var hostCounts = counts.cpu();
            return new ExpertGroups(order, (int)hostCounts.data<long>()[WanRouting.HighNoiseExpert]);
        }
        using var host = experts.cpu();
        var rows = host.data<long>().Select(e => (int)e).ToArray();
        var reference = WanRouting.GroupOrder(rows, out var highNoiseRows);
        return new ExpertGroups(tensor(reference.Select(r => (long)r).ToArray(), ScalarType.Int64, experts.device), highNoiseRows);
    }

    /// <summary>The batch rows [B, …] in grouped order: <c>grouped[j] = rows[order[j]]</c>.</summary>
    public static Tensor Permute(Tensor rows, ExpertGroups groups)
    {
        ArgumentNullException.ThrowIfNull(groups);
        if (!NativeKernels.Handles(rows) || rows.shape[0] > NativeKernels.WanRoutingMaxBatch) return rows.index_select(0, groups.Order);
        using var source = rows.contiguous();
        var grouped = empty_like(source);
        NativeKernels.WanRoutingPermute(source, groups.Order, grouped);
        return grouped;
    }

    /// <summary>Rows back in batch order: <c>rows[order[j]] = grouped[j]</c>.</summary>
    public static Tensor Unpermute(Tensor grouped, ExpertGroups groups)
    {
        ArgumentNullException.ThrowIfNull(groups);
        if (!NativeKernels.Handles(grouped) || grouped.shape[0] > NativeKernels.WanRoutingMaxBatch) return empty_like(grouped).index_copy_(0, groups.Order, grouped);
        using var source = grouped.contiguous();
        var rows = empty_like(source);
        NativeKernels.WanRoutingUnpermute(source, groups.Order, rows);
        return rows;
    }
}

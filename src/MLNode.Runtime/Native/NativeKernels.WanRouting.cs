using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace MLNode.Runtime.Native;

public static partial class NativeKernels
{
    /// <summary>The largest batch the routing kernels take (one thread block per batch); larger batches use the references.</summary>
    public const int WanRoutingMaxBatch = 1024;

    /// <summary>
    /// Timesteps and experts (int64 [B]) of the nonces whose seed32 values <paramref name="seeds"/> holds (int32 [B],
    /// the uint32 bit patterns) under the grid <paramref name="timesteps"/> and <paramref name="boundary"/>
    /// (kernels/wan_routing.cu; reference <c>MLNode.Protocol.Poc.WanRouting.Route</c>).
    /// </summary>
    public static void WanRoutingDerive(Tensor seeds, ReadOnlySpan<int> timesteps, int boundary, Tensor stepOut, Tensor expertOut)
    {
        Require.Type(seeds, ScalarType.Int32, nameof(seeds));
        Require.Type(stepOut, ScalarType.Int64, nameof(stepOut));
        Require.Type(expertOut, ScalarType.Int64, nameof(expertOut));
        var batch = checked((int)seeds.numel());
        Require.Length(stepOut, batch, nameof(stepOut));
        Require.Length(expertOut, batch, nameof(expertOut));
        Check(mlnode_wan_routing_derive(Pointer(seeds), batch, timesteps, timesteps.Length, boundary, Pointer(stepOut), Pointer(expertOut), Stream),
            nameof(mlnode_wan_routing_derive));
    }

    /// <summary>
    /// The stable partition of <paramref name="experts"/> (int64 [B]): <paramref name="order"/> (int64 [B]) lists the
    /// expert-0 rows then the others, each in batch order; <paramref name="counts"/> (int64 [2]) their numbers.
    /// </summary>
    public static void WanRoutingGroup(Tensor experts, Tensor order, Tensor counts)
    {
        Require.Type(experts, ScalarType.Int64, nameof(experts));
        Require.Type(order, ScalarType.Int64, nameof(order));
        Require.Type(counts, ScalarType.Int64, nameof(counts));
        var batch = checked((int)experts.numel());
        Require.Length(order, batch, nameof(order));
        Require.Length(counts, 2, nameof(counts));
        Check(mlnode_wan_routing_group(Pointer(experts), batch, Pointer(order), Pointer(counts), Stream), nameof(mlnode_wan_routing_group));
    }

    /// <summary><c>grouped[j] = rows[order[j]]</c> for rows [B, …] of any element type.</summary>
    public static void WanRoutingPermute(Tensor rows, Tensor order, Tensor grouped)
    {
        var (batch, rowElements) = Require.Rows(rows, order, grouped, nameof(grouped));
        Check(mlnode_wan_routing_permute(Pointer(rows), Pointer(grouped), Pointer(order), batch, rowElements, (int)rows.dtype, Stream),
            nameof(mlnode_wan_routing_permute));
    }

    /// <summary><c>rows[order[j]] = grouped[j]</c>: undoes <see cref="WanRoutingPermute"/>.</summary>
    public static void WanRoutingUnpermute(Tensor grouped, Tensor order, Tensor rows)
    {
        var (batch, rowElements) = Require.Rows(grouped, order, rows, nameof(rows));
        Check(mlnode_wan_routing_unpermute(Pointer(grouped), Pointer(rows), Pointer(order), batch, rowElements, (int)grouped.dtype, Stream),
            nameof(mlnode_wan_routing_unpermute));
    }

    [LibraryImport(LibraryName)]
    private static partial int mlnode_wan_routing_derive(
        nint seeds, int batch, ReadOnlySpan<int> hostTimesteps, int count, int boundary, nint timesteps, nint experts, nint stream);

    [LibraryImport(LibraryName)]
    private static partial int mlnode_wan_routing_group(nint experts, int batch, nint order, nint counts, nint stream);

    [LibraryImport(LibraryName)]
    private static partial int mlnode_wan_routing_permute(
        nint rows, nint grouped, nint order, int batch, long rowElements, int dtype, nint stream);

    [LibraryImport(LibraryName)]
    private static partial int mlnode_wan_routing_unpermute(
        nint grouped, nint rows, nint order, int batch, long rowElements, int dtype, nint stream);
}

// Argument checks of the bindings above; file-local so that other kernel families' partial files cannot collide.
file static class Require
{
    /// <summary>Rows [B, …] moving between two tensors of one shape and type by an int64 [B] order.</summary>
    public static (int Batch, long RowElements) Rows(Tensor source, Tensor order, Tensor destination, string destinationName)
    {
        Type(order, ScalarType.Int64, nameof(order));
        if (source.dim() < 1 || source.shape[0] == 0)
            throw new ArgumentException($"rows need a leading batch dimension, got shape [{string.Join(", ", source.shape)}]", nameof(source));
        if (!source.shape.SequenceEqual(destination.shape) || source.dtype != destination.dtype)
            throw new ArgumentException(
                $"{destinationName} must match the source: [{string.Join(", ", destination.shape)}] {destination.dtype} vs [{string.Join(", ", source.shape)}] {source.dtype}",
                destinationName);
        var batch = checked((int)source.shape[0]);
        Length(order, batch, nameof(order));
        return (batch, source.numel() / batch);
    }

    public static void Type(Tensor tensor, ScalarType type, string name)
    {
        if (tensor.dtype != type) throw new ArgumentException($"{name} must be {type}, got {tensor.dtype}", name);
    }

    public static void Length(Tensor tensor, long length, string name)
    {
        if (tensor.numel() != length) throw new ArgumentException($"{name} must hold {length} elements, got {tensor.numel()}", name);
    }
}

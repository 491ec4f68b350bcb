using MLNode.Runtime.Checkpoints;
using MLNode.Runtime.Collectives;
using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>
/// The tensor-parallel rank a model replica is built for: which share of each sharded weight it holds, and the
/// communicator its layers sum and gather partial results through. <see cref="Single"/> is the whole model on one
/// device, with no communication at all.
/// </summary>
public sealed class TensorParallel(ICommunicator? communicator)
{
    public static readonly TensorParallel Single = new(null);

    public ICommunicator? Communicator { get; } = communicator;
    public int Rank => Communicator?.Rank ?? 0;
    public int Size => Communicator?.WorldSize ?? 1;

    /// <summary>This rank's equal share of <paramref name="count"/> items (heads, rows, experts); <paramref name="what"/> names them in the refusal of an uneven split.</summary>
    public RankShare Share(long count, string what) =>
        count % Size == 0
            ? new RankShare(Rank * (count / Size), count / Size, count)
            : throw new InvalidDataException($"{what} do not split evenly among {Size} tensor-parallel ranks");

    /// <summary>
    /// This rank's key/value heads: an equal share when there are at least as many as ranks, otherwise the one head its
    /// query heads attend with (heads replicated over Size / kvHeads ranks, which must divide evenly).
    /// </summary>
    public RankShare KeyValueHeads(long kvHeads, string what)
    {
        if (kvHeads >= Size) return Share(kvHeads, what);
        if (Size % kvHeads != 0) throw new InvalidDataException($"{what} cannot be replicated evenly over {Size} tensor-parallel ranks");
        return new RankShare(Rank * kvHeads / Size, 1, kvHeads);
    }

    /// <summary>Sums <paramref name="partial"/> over the ranks in place (nothing to do on a single rank).</summary>
    public void AllReduceSum(Tensor partial) => Communicator?.AllReduceSum(partial);

    /// <summary>The ranks' <paramref name="part"/>s concatenated along <paramref name="dim"/>; the part itself on a single rank.</summary>
    public Tensor AllGather(Tensor part, long dim) => Communicator?.AllGather(part, dim) ?? part;
}

/// <summary>Items [<see cref="Start"/>, <see cref="Start"/> + <see cref="Length"/>) of <see cref="Total"/> held by one rank.</summary>
public readonly record struct RankShare(long Start, long Length, long Total)
{
    /// <summary>The share as a slice of dimension <paramref name="dim"/> of a weight with <paramref name="unit"/> indices per item; null for the whole.</summary>
    public TensorSlice? Along(int dim, long unit = 1) => Start == 0 && Length == Total ? null : new TensorSlice(dim, Start * unit, Length * unit);
}

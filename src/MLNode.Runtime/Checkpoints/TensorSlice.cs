namespace MLNode.Runtime.Checkpoints;

/// <summary>
/// Part of a stored tensor: indices [<see cref="Start"/>, <see cref="Start"/> + <see cref="Length"/>) of dimension
/// <see cref="Dim"/>, all of every other dimension. A tensor-parallel rank's shard of a weight is one: rows of a
/// column-parallel linear, columns of a row-parallel one, rows of a vocabulary-parallel embedding.
/// </summary>
public sealed record TensorSlice(int Dim, long Start, long Length)
{
    /// <summary>Rank <paramref name="rank"/>'s equal share of the <paramref name="extent"/> indices of dimension <paramref name="dim"/> among <paramref name="ranks"/>.</summary>
    public static TensorSlice Share(int dim, long extent, int rank, int ranks)
    {
        if (extent % ranks != 0)
            throw new ArgumentException($"{extent} does not split evenly among {ranks} ranks", nameof(ranks));
        var length = extent / ranks;
        return new TensorSlice(dim, rank * length, length);
    }

    /// <summary>The shape of this slice of a tensor of shape <paramref name="full"/>; refuses a slice that does not lie inside it.</summary>
    public long[] ShapeOf(long[] full)
    {
        if (Dim < 0 || Dim >= full.Length || Start < 0 || Length < 0 || Start + Length > full[Dim])
            throw new ArgumentOutOfRangeException(nameof(full), $"slice [{Start}, {Start + Length}) of dimension {Dim} lies outside shape [{string.Join(", ", full)}]");
        var shape = (long[])full.Clone();
        shape[Dim] = Length;
        return shape;
    }

    public override string ToString() => $"dim {Dim} [{Start}, {Start + Length})";
}

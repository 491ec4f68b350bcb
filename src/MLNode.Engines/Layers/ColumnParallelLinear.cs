using MLNode.Runtime.Checkpoints;

namespace MLNode.Engines.Layers;

/// <summary>
/// Column-parallel linear: each rank holds the output rows <c>rows</c> of W [out, in] (and of the bias) and computes
/// y_r = x W_rᵀ + b_r, its own slice of y's features. The layer that reads y_r (a <see cref="RowParallelLinear"/>, the
/// attention of the rank's heads) takes the slice as it is, so nothing is communicated here.
/// </summary>
public sealed class ColumnParallelLinear(WeightSource w, string prefix, long inFeatures, long outFeatures, TensorSlice? rows, bool hasBias = false)
    : Linear(w, prefix, inFeatures, outFeatures, hasBias, rows)
{
    /// <summary>The rank's equal share of the <paramref name="outFeatures"/> outputs.</summary>
    public ColumnParallelLinear(WeightSource w, string prefix, long inFeatures, long outFeatures, TensorParallel parallel, bool hasBias = false)
        : this(w, prefix, inFeatures, outFeatures, parallel.Share(outFeatures, $"{prefix}: {outFeatures} output features").Along(0), hasBias)
    {
    }
}

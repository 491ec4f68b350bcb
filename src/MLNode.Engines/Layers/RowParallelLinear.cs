using MLNode.Runtime.Checkpoints;
using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>
/// Row-parallel linear: each rank holds the input columns <c>columns</c> of W [out, in] and multiplies its slice of the
/// features (what a <see cref="ColumnParallelLinear"/> or its heads' attention produced) by them. The partial products
/// are summed over the ranks by an all-reduce, after which every rank holds the whole y; the bias is added once, after.
/// </summary>
public sealed class RowParallelLinear(WeightSource w, string prefix, long inFeatures, long outFeatures, TensorSlice? columns, TensorParallel parallel, bool hasBias = false)
    : Linear(w, prefix, inFeatures, outFeatures, hasBias, columns)
{
    public override Tensor forward(Tensor x)
    {
        if (parallel.Communicator is null) return base.forward(x);
        var y = Product(x);
        parallel.AllReduceSum(y);
        return Bias is null ? y : y.add_(Bias);
    }
}

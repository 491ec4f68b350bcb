using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>
/// Token embedding table <c>weight</c> [vocab, d] split by rows over the tensor-parallel ranks. Each rank looks up the
/// ids among its rows and gives zeros for the others; the all-reduce adds the ranks' outputs, so every rank gets each
/// id's row exactly (x + 0 = x). As a tied LM head, each rank's rows give its slice of the vocabulary's logits.
/// </summary>
public sealed class VocabParallelEmbedding : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Parameter weight;
#pragma warning restore IDE1006
    private readonly TensorParallel _parallel;
    private readonly long _first;

    public VocabParallelEmbedding(WeightSource w, string prefix, long vocab, long width, TensorParallel parallel) : base(prefix)
    {
        var rows = parallel.Share(vocab, $"{prefix}: {vocab} vocabulary rows");
        weight = w.Parameter($"{prefix}.weight", [vocab, width], rows.Along(0));
        (_parallel, _first) = (parallel, rows.Start);
        RegisterComponents();
    }

    /// <summary>This rank's rows of the table.</summary>
    public Tensor Weight => weight;

    public override Tensor forward(Tensor ids)
    {
        if (_parallel.Communicator is null) return Lookup(ids);
        using var scope = NewDisposeScope();
        var local = ids - _first;
        var outside = (local < 0).logical_or_(local >= weight.shape[0]);
        var rows = Lookup(local.masked_fill(outside, 0)).masked_fill_(outside.unsqueeze(-1), 0);
        _parallel.AllReduceSum(rows);
        return rows.MoveToOuterDisposeScope();
    }

    private Tensor Lookup(Tensor ids) => weight.index_select(0, ids.flatten()).view([.. ids.shape, weight.shape[1]]);
}

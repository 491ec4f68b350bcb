using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>
/// The gated feed-forward of Qwen/Llama: down(silu(gate(x)) ⊙ up(x)). Under tensor parallelism each rank holds a share of
/// the hidden features: gate and up column-parallel, down row-parallel, one all-reduce.
/// </summary>
public sealed class SwiGlu : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Linear gate_proj;
    private readonly Linear up_proj;
    private readonly RowParallelLinear down_proj;
#pragma warning restore IDE1006

    public SwiGlu(WeightSource w, string prefix, long width, long hidden, TensorParallel? parallel = null) : base(prefix)
    {
        parallel ??= TensorParallel.Single;
        var features = parallel.Share(hidden, $"{prefix}: {hidden} hidden features");
        gate_proj = new ColumnParallelLinear(w, $"{prefix}.gate_proj", width, hidden, features.Along(0));
        up_proj = new ColumnParallelLinear(w, $"{prefix}.up_proj", width, hidden, features.Along(0));
        down_proj = new RowParallelLinear(w, $"{prefix}.down_proj", hidden, width, features.Along(1), parallel);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return down_proj.forward(nn.functional.silu(gate_proj.forward(x)) * up_proj.forward(x)).MoveToOuterDisposeScope();
    }
}

using MLNode.Runtime.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>
/// The gated feed-forward of Qwen/Llama: down(silu(gate(x)) ⊙ up(x)), gate and up packed into one GEMM and, on the GPU,
/// the gate applied by one kernel. Under tensor parallelism each rank holds a share of the hidden features: gate and up
/// column-parallel, down row-parallel, one all-reduce.
/// </summary>
public sealed class SwiGlu : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Linear gate_proj;
    private readonly Linear up_proj;
    private readonly RowParallelLinear down_proj;
#pragma warning restore IDE1006
    private readonly PackedLinears _gateUp;

    public SwiGlu(WeightSource w, string prefix, long width, long hidden, TensorParallel? parallel = null) : base(prefix)
    {
        parallel ??= TensorParallel.Single;
        var features = parallel.Share(hidden, $"{prefix}: {hidden} hidden features").Along(0);
        _gateUp = PackedLinears.Load(w, prefix, ["gate_proj", "up_proj"], width, [hidden, hidden], rows: [features, features]);
        (gate_proj, up_proj) = (_gateUp.Layers[0], _gateUp.Layers[1]);
        down_proj = new RowParallelLinear(w, $"{prefix}.down_proj", hidden, width, features is null ? null : features with { Dim = 1 }, parallel);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return down_proj.forward(Gate(_gateUp.Forward(x))).MoveToOuterDisposeScope();
    }

    /// <summary>silu(gate) ⊙ up from the packed [..., 2F] projection.</summary>
    private Tensor Gate(Tensor gateUp)
    {
        if (NativeKernels.Handles(gateUp)) return NativeKernels.SiluMul(gateUp);
        var parts = _gateUp.Split(gateUp);
        return nn.functional.silu(parts[0]) * parts[1];
    }
}

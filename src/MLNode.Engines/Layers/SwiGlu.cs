using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>The gated feed-forward of Qwen/Llama: down(silu(gate(x)) ⊙ up(x)).</summary>
public sealed class SwiGlu : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Linear gate_proj;
    private readonly Linear up_proj;
    private readonly Linear down_proj;
#pragma warning restore IDE1006

    public SwiGlu(WeightSource w, string prefix, long width, long hidden) : base(prefix)
    {
        gate_proj = new Linear(w, $"{prefix}.gate_proj", width, hidden);
        up_proj = new Linear(w, $"{prefix}.up_proj", width, hidden);
        down_proj = new Linear(w, $"{prefix}.down_proj", hidden, width);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return down_proj.forward(nn.functional.silu(gate_proj.forward(x)) * up_proj.forward(x)).MoveToOuterDisposeScope();
    }
}

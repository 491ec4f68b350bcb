using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>
/// LayerNorm over the last dimension with the checkpoint's <c>weight</c> and <c>bias</c> (torch's default eps 1e-5),
/// computed in float32 whatever the activation dtype and rounded once to it, as openai-whisper's <c>LayerNorm</c> does:
/// bf16 statistics over 1280 channels would lose the precision the pre-norm residual stream relies on. The weights are
/// kept in float32 (their bf16 values are exact in it); libtorch's kernels take a bf16 or fp16 input with float32
/// weights as one op that accumulates in float32, so no cast of the activations is launched.
/// </summary>
public sealed class LayerNorm : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Parameter weight;
    private readonly Parameter bias;
#pragma warning restore IDE1006
    private readonly long _size;
    private readonly double _eps;

    public LayerNorm(WeightSource w, string prefix, long size, double eps = 1e-5) : base(prefix)
    {
        weight = Float32(w.Parameter($"{prefix}.weight", size));
        bias = Float32(w.Parameter($"{prefix}.bias", size));
        (_size, _eps) = (size, eps);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => nn.functional.layer_norm(x, [_size], weight, bias, _eps);

    private static Parameter Float32(Parameter p)
    {
        if (p.dtype == ScalarType.Float32) return p;
        using (p) return new Parameter(p.to(ScalarType.Float32), requires_grad: false);
    }
}

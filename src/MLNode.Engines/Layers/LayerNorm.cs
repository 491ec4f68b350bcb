using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>
/// LayerNorm over the last dimension as torch's <c>nn.LayerNorm(size, eps, elementwise_affine)</c>: with the
/// checkpoint's <c>weight</c> and <c>bias</c> when affine, none otherwise. Computed in float32 whatever the
/// activation dtype and rounded once to it (Wan's <c>WanLayerNorm</c>, diffusers' <c>FP32LayerNorm</c>, openai-whisper's
/// <c>LayerNorm</c>): bf16 statistics over thousands of channels lose the precision a pre-norm residual stream
/// relies on. The affine weights are kept in float32 for the same reason. A bf16 or fp16 input is widened first:
/// libtorch's CPU kernel would take it with float32 weights as one op, but its CUDA kernel wants one dtype for all.
/// </summary>
public sealed class LayerNorm : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Parameter? weight;
    private readonly Parameter? bias;
#pragma warning restore IDE1006
    private readonly long _size;
    private readonly double _eps;

    public LayerNorm(WeightSource w, string prefix, long size, double eps = 1e-5, bool elementwiseAffine = true) : base(prefix)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (elementwiseAffine)
        {
            weight = Float32(w.Parameter($"{prefix}.weight", size));
            bias = Float32(w.Parameter($"{prefix}.bias", size));
        }
        (_size, _eps) = (size, eps);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        if (x.dtype == ScalarType.Float32) return nn.functional.layer_norm(x, [_size], weight, bias, _eps);
        using var wide = x.to(ScalarType.Float32);
        using var normed = nn.functional.layer_norm(wide, [_size], weight, bias, _eps);
        return normed.to(x.dtype);
    }

    private static Parameter Float32(Parameter p)
    {
        if (p.dtype == ScalarType.Float32) return p;
        using (p) return new Parameter(p.to(ScalarType.Float32), requires_grad: false);
    }
}

using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>LayerNorm over the last dimension with the checkpoint's <c>weight</c> and <c>bias</c> (torch's default eps 1e-5).</summary>
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
        weight = w.Parameter($"{prefix}.weight", size);
        bias = w.Parameter($"{prefix}.bias", size);
        (_size, _eps) = (size, eps);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => nn.functional.layer_norm(x, [_size], weight, bias, _eps);
}

using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>y = x Wᵀ (+ b), with the checkpoint's <c>weight</c> [out, in] and optional <c>bias</c>.</summary>
public sealed class Linear : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Parameter weight;
    private readonly Parameter? bias;
#pragma warning restore IDE1006

    public Linear(WeightSource w, string prefix, long inFeatures, long outFeatures, bool hasBias = false) : base(prefix)
    {
        weight = w.Parameter($"{prefix}.weight", outFeatures, inFeatures);
        bias = hasBias ? w.Parameter($"{prefix}.bias", outFeatures) : null;
        RegisterComponents();
    }

    public long OutFeatures => weight.shape[0];

    public override Tensor forward(Tensor x) => nn.functional.linear(x, weight, bias);
}

using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>1-D convolution over [B, in, T] with the checkpoint's <c>weight</c> [out, in, kernel] and <c>bias</c> [out].</summary>
public sealed class Conv1d : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Parameter weight;
    private readonly Parameter bias;
#pragma warning restore IDE1006
    private readonly long _stride;
    private readonly long _padding;

    public Conv1d(WeightSource w, string prefix, long inChannels, long outChannels, long kernel, long stride = 1, long padding = 0) : base(prefix)
    {
        weight = w.Parameter($"{prefix}.weight", outChannels, inChannels, kernel);
        bias = w.Parameter($"{prefix}.bias", outChannels);
        (_stride, _padding) = (stride, padding);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => nn.functional.conv1d(x, weight, bias, _stride, _padding);
}

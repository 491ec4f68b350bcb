using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>A square-kernel 2-D convolution with the checkpoint's <c>weight</c> [out, in, k, k] and <c>bias</c> [out].</summary>
public sealed class Conv2d : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Parameter weight;
    private readonly Parameter bias;
#pragma warning restore IDE1006
    private readonly long _stride;
    private readonly long _padding;

    public Conv2d(WeightSource w, string prefix, long inChannels, long outChannels, long kernel, long stride, long padding) : base(prefix)
    {
        weight = w.Parameter($"{prefix}.weight", outChannels, inChannels, kernel, kernel);
        bias = w.Parameter($"{prefix}.bias", outChannels);
        (_stride, _padding) = (stride, padding);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => nn.functional.conv2d(x, weight, bias, strides: [_stride, _stride], padding: [_padding, _padding]);
}

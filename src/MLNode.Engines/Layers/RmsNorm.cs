using MLNode.Runtime.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>
/// RMSNorm as Qwen computes it: normalise in float32, cast back, then scale by the weight. On the GPU one
/// native kernel does it in a single pass over each row (libtorch's six ops run at a tenth of HBM bandwidth).
/// </summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Parameter weight;
#pragma warning restore IDE1006
    private readonly double _eps;

    public RmsNorm(WeightSource w, string prefix, long size, double eps) : base(prefix)
    {
        weight = w.Parameter($"{prefix}.weight", size);
        _eps = eps;
        RegisterComponents();
    }

    public Tensor Weight => weight;
    public double Eps => _eps;

    public override Tensor forward(Tensor x) =>
        NativeKernels.Handles(x) ? NativeKernels.RmsNorm(x.contiguous(), weight, _eps) : Reference(x);

    /// <summary>
    /// The residual sum <c>x + r</c> and its norm: one pass on the GPU (the sum rounded to the dtype as the eager add
    /// rounds it, then normalised), the eager add and <see cref="forward"/> elsewhere.
    /// </summary>
    public (Tensor Sum, Tensor Normed) AddAndNorm(Tensor x, Tensor r)
    {
        if (NativeKernels.Handles(x)) return NativeKernels.AddRmsNorm(x.contiguous(), r.contiguous(), weight, _eps);
        var sum = x + r;
        return (sum, forward(sum));
    }

    /// <summary>The libtorch formulation: the CPU path and the GPU kernel's oracle.</summary>
    public Tensor Reference(Tensor x)
    {
        using var scope = NewDisposeScope();
        var x32 = x.to(ScalarType.Float32);
        var normed = x32 * rsqrt(x32.pow(2).mean([-1], keepdim: true) + _eps);
        return (weight * normed.to(x.dtype)).MoveToOuterDisposeScope();
    }
}

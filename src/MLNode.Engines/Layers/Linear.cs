using MLNode.Runtime.Checkpoints;
using MLNode.Runtime.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>
/// y = x Wᵀ (+ b), with the checkpoint's <c>weight</c> [out, in] and optional <c>bias</c>. A block-scaled FP8
/// checkpoint whose weight source keeps FP8 (on a GPU with the native kernels) leaves W as E4M3 bits with its
/// <c>weight_scale_inv</c> (<see cref="Fp8BlockWeight"/>); everywhere else W arrives in the activation dtype.
/// </summary>
public class Linear : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Parameter weight;
    private readonly Parameter? weight_scale_inv;
    private readonly Parameter? bias;
#pragma warning restore IDE1006
    private readonly Fp8BlockWeight? _fp8;

    public Linear(WeightSource w, string prefix, long inFeatures, long outFeatures, bool hasBias = false)
        : this(w, prefix, inFeatures, outFeatures, hasBias, null)
    {
    }

    /// <param name="slice">The part of W [out, in] this module holds, when not all of it: rows (and the bias's rows) or columns (and the whole bias).</param>
    protected Linear(WeightSource w, string prefix, long inFeatures, long outFeatures, bool hasBias, TensorSlice? slice) : base(prefix)
    {
        _fp8 = w.Fp8Weight($"{prefix}.weight", outFeatures, inFeatures, slice);
        weight = _fp8?.Bits ?? w.Parameter($"{prefix}.weight", [outFeatures, inFeatures], slice);
        weight_scale_inv = _fp8?.ScaleInv;
        bias = hasBias ? w.Parameter($"{prefix}.bias", [outFeatures], slice is { Dim: 0 } ? slice : null) : null;
        RegisterComponents();
    }

    /// <summary>A dense layer over tensors that already hold its weight [out, in] and bias (views of packed rows: <see cref="PackedLinears"/>).</summary>
    internal Linear(string prefix, Tensor weight, Tensor? bias) : base(prefix)
    {
        this.weight = new Parameter(weight, requires_grad: false);
        this.bias = bias is null ? null : new Parameter(bias, requires_grad: false);
        RegisterComponents();
    }

    public long OutFeatures => weight.shape[0];

    /// <summary>True when W stays in FP8 (E4M3 bits and block scales) rather than the activation dtype.</summary>
    public bool IsFp8 => _fp8 is not null;

    public override Tensor forward(Tensor x) => _fp8 is null ? Dense(x, weight, bias) : _fp8.Linear(x, bias);

    /// <summary>x Wᵀ without the bias.</summary>
    protected Tensor Product(Tensor x) => _fp8 is null ? Dense(x, weight, null) : _fp8.Linear(x, null);

    protected Tensor? Bias => bias;

    /// <summary>x Wᵀ (+ b) with a dense W: the native GEMV for the few rows of a decode step on the GPU, libtorch's GEMM otherwise.</summary>
    internal static Tensor Dense(Tensor x, Tensor weight, Tensor? bias) =>
        NativeKernels.GemvFits(x, weight) ? NativeKernels.Gemv(x, weight, bias) : nn.functional.linear(x, weight, bias);
}

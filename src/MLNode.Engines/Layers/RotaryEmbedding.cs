using MLNode.Runtime.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>
/// NeoX-style rotary position embedding (the two halves of each head rotate together), with the
/// cos/sin tables computed in float32 and cast to the activation dtype, as transformers does. Heads are
/// rotated in the projection's own layout [B, L, H, D], before the transpose for attention, so the GPU
/// kernel reads contiguous rows.
/// </summary>
public sealed class RotaryEmbedding
{
    private readonly Tensor _invFreq;

    public RotaryEmbedding(int headDim, double theta, Device device)
    {
        using var exponents = arange(0, headDim, 2, ScalarType.Float64, device) / headDim;
        using var powers = pow(theta, exponents);
        _invFreq = (1.0 / powers).to(ScalarType.Float32).DetachFromDisposeScope();
    }

    /// <summary>cos and sin for <paramref name="positions"/> (int64 [L]) → each [L, headDim] in <paramref name="dtype"/>.</summary>
    public (Tensor Cos, Tensor Sin) Tables(Tensor positions, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var freqs = outer(positions.to(ScalarType.Float32), _invFreq);
        var emb = cat([freqs, freqs], -1);
        return (emb.cos().to(dtype).MoveToOuterDisposeScope(), emb.sin().to(dtype).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// x [B, L, H, D] rotated by position: x·cos + rotate_half(x)·sin, with cos/sin [1, L, 1, D] (prefill) or
    /// [B, 1, 1, D] (decode). On the GPU one native kernel computes the same roundings.
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin) =>
        NativeKernels.Handles(x) ? NativeKernels.Rotary(x.contiguous(), cos, sin) : Reference(x, cos, sin);

    /// <summary>The eager expression: the CPU path and the GPU kernel's oracle.</summary>
    public static Tensor Reference(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        var half = x.shape[^1] / 2;
        var rotated = cat([-x[TensorIndex.Ellipsis, TensorIndex.Slice(half)], x[TensorIndex.Ellipsis, TensorIndex.Slice(0, half)]], -1);
        return (x * cos + rotated * sin).MoveToOuterDisposeScope();
    }
}

using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>
/// NeoX-style rotary position embedding (the two halves of each head rotate together), with the
/// cos/sin tables computed in float32 and cast to the activation dtype, as transformers does.
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

    /// <summary>x [B, H, L, D] rotated by position: x·cos + rotate_half(x)·sin.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        var half = x.shape[^1] / 2;
        var rotated = cat([-x[TensorIndex.Ellipsis, TensorIndex.Slice(half)], x[TensorIndex.Ellipsis, TensorIndex.Slice(0, half)]], -1);
        return (x * cos + rotated * sin).MoveToOuterDisposeScope();
    }
}

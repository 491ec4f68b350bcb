using MLNode.Engines.Layers;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Layers;

public sealed class LayerNormTests
{
    /// <summary>Weights by name: a scale and shift of 1.5 and 0.25 (exact in bf16), so the affine part is exercised.</summary>
    private sealed class Affine(ScalarType dtype) : WeightSource(CPU, dtype)
    {
        protected override Tensor Load(string name, long[] shape) => full(shape, name.EndsWith(".weight", StringComparison.Ordinal) ? 1.5 : 0.25, DType);
    }

    [Fact]
    public void Bf16_activations_are_normalised_in_float32_and_rounded_once()
    {
        using var scope = NewDisposeScope();
        var norm = new LayerNorm(new Affine(ScalarType.BFloat16), "ln", 1280);
        var x = (randn(3, 1280, generator: new TorchSharp.torch.Generator(7)) * 4 + 2).to(ScalarType.BFloat16);
        var y = norm.forward(x);
        Assert.Equal(ScalarType.BFloat16, y.dtype);
        var reference = (nn.functional.layer_norm(x.to(ScalarType.Float32), [1280]) * 1.5 + 0.25).to(ScalarType.BFloat16);
        Assert.True(y.equal(reference).all().item<bool>(), "bf16 LayerNorm differs from the float32 computation rounded once");
    }
}

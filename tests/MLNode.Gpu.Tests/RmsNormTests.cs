using MLNode.Engines.Layers;
using static TorchSharp.torch;

namespace MLNode.Gpu.Tests;

public class RmsNormTests
{
    public static TheoryData<ScalarType, long, long> Shapes => new()
    {
        { ScalarType.BFloat16, 64, 4096 },   // hidden rows: one block per row, a 16-byte vector at a time
        { ScalarType.BFloat16, 4096, 128 },  // per-head q/k norm rows: one warp per row
        { ScalarType.Float16, 33, 5120 },
        { ScalarType.Float32, 17, 1000 },    // a warp per row
        { ScalarType.BFloat16, 5, 1030 },    // a block per row, element by element: no whole number of vectors
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Kernel_matches_the_libtorch_formulation(ScalarType dtype, long rows, long width)
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        var norm = new RmsNorm(new RandomWeights(cuda, dtype, seed: 7), "norm", width, 1e-6);
        // Inputs are drawn on the CPU: TorchSharp's Generator(seed, device) is a CPU generator whatever the device.
        norm.parameters().Single().copy_(rand(width, generator: new Generator(5)) + 0.5);
        var x = (randn(rows, width, generator: new Generator(11)) * 3).to(dtype).to(cuda);

        var ours = norm.forward(x).to(ScalarType.Float32);
        var reference = norm.Reference(x).to(ScalarType.Float32);

        // The float32 mean(x²) is summed in another order than libtorch's reduction, which moves rsqrt by an ulp
        // or two of float32. In a half type that can flip the rounding of normed by one ulp, which the product
        // with w (0.5–1.5) carries into the output, plus the output's own rounding: at most two ulps of the
        // dtype (2^-6 relative for bf16, 2^-9 for fp16); float32 outputs stay within 1e-6 relative.
        var bound = dtype switch { ScalarType.BFloat16 => 1.0 / 64, ScalarType.Float16 => 1.0 / 512, _ => 1e-6 };
        var excess = ((ours - reference).abs() - reference.abs() * bound).max().item<float>();
        Assert.True(excess <= 1e-6, $"{dtype} [{rows}, {width}]: worst difference exceeds the bound by {excess}");
        if (dtype == ScalarType.Float32) return;
        // In a half type the roundings absorb the float32 difference almost always.
        var equal = (ours == reference).to(ScalarType.Float32).mean().item<float>();
        Assert.True(equal > 0.99, $"only {equal:P2} of the values are bit-identical to libtorch's");
    }
}

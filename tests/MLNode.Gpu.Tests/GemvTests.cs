using MLNode.Runtime.Native;
using static TorchSharp.torch;

namespace MLNode.Gpu.Tests;

/// <summary>The few-row GEMV of decode steps against a float64 product, and its independence of the rows beside each row.</summary>
public class GemvTests
{
    [Theory]
    [InlineData(ScalarType.BFloat16, 6144, 4096, false)]
    [InlineData(ScalarType.BFloat16, 4096, 12288, false)]
    [InlineData(ScalarType.Float16, 1000, 896, true)]
    [InlineData(ScalarType.Float32, 160, 64, true)]   // the tiny fixtures' shapes
    public void Product_matches_float64_for_every_row_count(ScalarType dtype, long n, long k, bool withBias)
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        var weight = (randn([n, k], generator: new Generator(3)) * 0.02).to(dtype).to(cuda);
        var bias = withBias ? randn([n], generator: new Generator(4)).to(dtype).to(cuda) : null;
        var x = randn([NativeKernels.GemvMaxRows, 1, k], generator: new Generator(5)).to(dtype).to(cuda);
        var w64 = weight.to(ScalarType.Float64);
        var all = NativeKernels.Gemv(x, weight, bias);
        for (var rows = 1; rows <= NativeKernels.GemvMaxRows; rows++)
        {
            var input = x.narrow(0, 0, rows);
            var ours = NativeKernels.Gemv(input, weight, bias);
            Assert.True(ours.equal(all.narrow(0, 0, rows)).all().item<bool>(), $"rows 0..{rows - 1} alone differ from the same rows among {NativeKernels.GemvMaxRows}");
            var expected = matmul(input.to(ScalarType.Float64), w64.t());
            if (bias is not null) expected += bias.to(ScalarType.Float64);
            // float32 accumulation over k products of |w| ≲ 0.1 and |x| ≲ 4 (~1e-5 absolute), plus the output's rounding:
            // half an ulp of the dtype, at most 2^-8 of the value for bf16 (7 stored bits), 2^-11 for fp16, 2^-24 for fp32.
            var half = dtype switch { ScalarType.BFloat16 => 1.0 / 256, ScalarType.Float16 => 1.0 / 2048, _ => 6e-8 };
            var excess = ((ours.to(ScalarType.Float64) - expected).abs() - expected.abs() * half).max().item<double>();
            Assert.True(excess <= 1e-4, $"{dtype} [{rows}×{k}]·[{n}×{k}]ᵀ: worst difference exceeds the rounding bound by {excess}");
        }
    }
}

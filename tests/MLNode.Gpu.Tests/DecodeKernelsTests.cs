using MLNode.Engines.Layers;
using MLNode.Runtime.Native;
using static TorchSharp.torch;

namespace MLNode.Gpu.Tests;

/// <summary>
/// The decode step's fused kernels against the ops they replace: q/k/v preparation bit-identical to the native RMSNorm
/// and RoPE kernels plus index_put into the cache, attention against a float64 softmax over each sequence's positions,
/// the residual norm and SwiGLU gate against the eager ops.
/// </summary>
public class DecodeKernelsTests
{
    private const int Slots = 4, Capacity = 520;

    // (dtype, heads, kv heads, head dim): Qwen3-8B's grouping in bf16, and the tiny fixtures' float32 shape.
    public static TheoryData<ScalarType, int, int, int> Shapes => new()
    {
        { ScalarType.BFloat16, 32, 8, 128 },
        { ScalarType.Float16, 28, 4, 128 },  // 7 query heads per key/value head, as Qwen2.5-7B
        { ScalarType.Float32, 4, 2, 16 },
    };

    // One sequence within the first chunk of 128 positions, one across three, one at the end of the cache.
    private static readonly long[] SlotOf = [2, 0, 3], PositionOf = [5, 300, Capacity - 1];

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Qkv_preparation_equals_the_norm_and_rope_kernels_and_writes_the_cache(ScalarType dtype, int heads, int kvHeads, int dim)
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        var (qkv, cos, sin, keys, values, slots, positions) = Operands(cuda, dtype, heads, kvHeads, dim);
        var w = new RandomWeights(cuda, dtype, seed: 3);
        var (qNorm, kNorm) = (new RmsNorm(w, "q.scale", dim, 1e-6), new RmsNorm(w, "k.scale", dim, 1e-6));
        var (expectedKeys, expectedValues) = (keys.clone(), values.clone());

        var q = NativeKernels.DecodeQkv(qkv, qNorm.Weight, kNorm.Weight, 1e-6, cos, sin, keys, values, slots, positions, heads, kvHeads);

        var batch = qkv.shape[0];
        var parts = qkv.split([heads * dim, kvHeads * dim, kvHeads * dim], -1);
        Tensor Rotated(Tensor x, RmsNorm norm, int n) =>
            NativeKernels.Rotary(norm.forward(x.contiguous().view(batch, 1, n, dim)), cos.view(batch, 1, 1, dim), sin.view(batch, 1, 1, dim)).view(batch, n, dim);
        TensorIndex[] at = [TensorIndex.Tensor(slots), TensorIndex.Colon, TensorIndex.Tensor(positions)];
        expectedKeys.index_put_(Rotated(parts[1], kNorm, kvHeads), at);
        expectedValues.index_put_(parts[2].contiguous().view(batch, kvHeads, dim), at);
        Assert.True(q.equal(Rotated(parts[0], qNorm, heads)).all().item<bool>(), "queries differ from RMSNorm + RoPE kernels");
        Assert.True(keys.equal(expectedKeys).all().item<bool>(), "keys in the cache differ");
        Assert.True(values.equal(expectedValues).all().item<bool>(), "values in the cache differ");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Attention_over_the_cache_matches_a_float64_softmax(ScalarType dtype, int heads, int kvHeads, int dim)
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        var (_, _, _, keys, values, slots, positions) = Operands(cuda, dtype, heads, kvHeads, dim);
        var q = randn([SlotOf.Length, heads, dim], generator: new Generator(17)).to(dtype).to(cuda);

        var ours = NativeKernels.DecodeAttention(q, keys, values, slots, positions, Capacity).to(ScalarType.Float64).cpu();

        var (k64, v64, q64) = (keys.to(ScalarType.Float64).cpu(), values.to(ScalarType.Float64).cpu(), q.to(ScalarType.Float64).cpu());
        for (var b = 0; b < SlotOf.Length; b++)
            for (var h = 0; h < heads; h++)
            {
                var g = h / (heads / kvHeads);
                var k = k64[SlotOf[b], g].narrow(0, 0, PositionOf[b] + 1);
                var v = v64[SlotOf[b], g].narrow(0, 0, PositionOf[b] + 1);
                var expected = matmul((matmul(k, q64[b, h]) / Math.Sqrt(dim)).softmax(0), v);
                // float32 accumulation over ≤ 520 positions: ~1e-6 relative; a half type adds its output rounding,
                // half an ulp (2^-9 bf16, 2^-12 fp16) of values that stay below 4 in magnitude here.
                var bound = dtype switch { ScalarType.BFloat16 => 4.0 / 512, ScalarType.Float16 => 4.0 / 4096, _ => 1e-5 };
                var worst = (ours[b, h] - expected).abs().max().item<double>();
                Assert.True(worst <= bound, $"{dtype} sequence {b} head {h}: worst difference {worst} > {bound}");
            }
    }

    [Fact]
    public void Attention_of_a_sequence_does_not_depend_on_its_batch_or_span()
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        var (_, _, _, keys, values, slots, positions) = Operands(cuda, ScalarType.BFloat16, 32, 8, 128);
        var q = randn([SlotOf.Length, 32, 128], generator: new Generator(19)).to(ScalarType.BFloat16).to(cuda);

        var batched = NativeKernels.DecodeAttention(q, keys, values, slots, positions, Capacity);
        var again = NativeKernels.DecodeAttention(q, keys, values, slots, positions, Capacity);
        var alone = NativeKernels.DecodeAttention(q.narrow(0, 1, 1), keys, values, slots.narrow(0, 1, 1), positions.narrow(0, 1, 1), PositionOf[1] + 1);

        Assert.True(batched.equal(again).all().item<bool>(), "two runs differ");
        Assert.True(batched.narrow(0, 1, 1).equal(alone).all().item<bool>(), "the sequence alone, over its own span, differs from its row in the batch");
    }

    [Theory]
    [InlineData(ScalarType.BFloat16, 4096)]  // a vector at a time
    [InlineData(ScalarType.BFloat16, 1030)]  // element by element
    [InlineData(ScalarType.Float32, 64)]
    public void Residual_norm_equals_the_add_then_the_norm_kernel(ScalarType dtype, long width)
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        var norm = new RmsNorm(new RandomWeights(cuda, dtype, seed: 5), "n.scale", width, 1e-6);
        var x = randn([3, 1, width], generator: new Generator(23)).to(dtype).to(cuda);
        var r = randn([3, 1, width], generator: new Generator(29)).to(dtype).to(cuda);

        var (sum, normed) = norm.AddAndNorm(x, r);

        var expectedSum = x + r;
        Assert.True(sum.equal(expectedSum).all().item<bool>(), "residual sums differ from the eager add");
        Assert.True(normed.equal(norm.forward(expectedSum)).all().item<bool>(), "norms differ from the RMSNorm kernel");
    }

    [Theory]
    [InlineData(ScalarType.BFloat16, 1000)]  // whole 16-byte vectors: one vector per thread
    [InlineData(ScalarType.Float16, 1000)]
    [InlineData(ScalarType.Float32, 1000)]
    [InlineData(ScalarType.BFloat16, 999)]   // one element per thread
    public void Swiglu_gate_matches_silu_times_up(ScalarType dtype, int width)
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        var gateUp = (randn([5, 1, 2 * width], generator: new Generator(31)) * 4).to(dtype).to(cuda);

        var ours = NativeKernels.SiluMul(gateUp).to(ScalarType.Float64);

        var parts = gateUp.split([width, width], -1);
        var expected = (nn.functional.silu(parts[0]) * parts[1]).to(ScalarType.Float64);
        // Both round silu and the product to the dtype; libtorch's exp may differ from ours by an ulp of float32,
        // which can move a rounding by one ulp of the dtype (2^-7 relative bf16, 2^-10 fp16): two ulps bound it.
        var bound = dtype switch { ScalarType.BFloat16 => 1.0 / 64, ScalarType.Float16 => 1.0 / 512, _ => 1e-6 };
        var excess = ((ours - expected).abs() - expected.abs() * bound).max().item<double>();
        Assert.True(excess <= 1e-6, $"{dtype}: worst difference exceeds the bound by {excess}");
    }

    /// <summary>A packed q/k/v row per sequence, rotary tables for its position, and caches of random contents.</summary>
    private static (Tensor Qkv, Tensor Cos, Tensor Sin, Tensor Keys, Tensor Values, Tensor Slots, Tensor Positions) Operands(
        Device cuda, ScalarType dtype, int heads, int kvHeads, int dim)
    {
        var batch = SlotOf.Length;
        var qkv = randn([batch, (heads + 2 * kvHeads) * dim], generator: new Generator(11)).to(dtype).to(cuda);
        var positions = tensor(PositionOf, device: cuda);
        var (cos, sin) = new RotaryEmbedding(dim, 1e6, cuda).Tables(positions, dtype);
        var keys = randn([Slots, kvHeads, Capacity, dim], generator: new Generator(13)).to(dtype).to(cuda);
        var values = randn([Slots, kvHeads, Capacity, dim], generator: new Generator(14)).to(dtype).to(cuda);
        return (qkv, cos, sin, keys, values, tensor(SlotOf, device: cuda), positions);
    }
}

using MLNode.Runtime.Native;
using static TorchSharp.torch;

namespace MLNode.Gpu.Tests;

/// <summary>
/// kernels/poc_householder.cu against libtorch on the GPU evaluating the reference hook's expression
/// <c>h - 2 * matmul(h, v).unsqueeze(-1) * v</c> in the same dtype. Everything but the float32 sum inside the dot
/// is rounded the same way on both sides; the sum's order is cuBLAS's business, so:
/// - bf16/f16: every row must equal, bit for bit, the expression evaluated with the dot rounded to the dtype
///   being cuBLAS's or within DotUlps steps of it. The two float32 sums differ by ~√d·2^-24·Σ|x_i v_i|, about
///   1e-4 of the dot for random rows, well below a bf16 step (2^-8) and an f16 step (2^-11), so they round to
///   the same or an adjacent value; f16 gets more room because PyTorch lets cuBLAS reduce partial sums in fp16.
/// - f32: |ours − theirs| ≤ 2|v_i|·Δ + ulp(2·dot·v_i) + ulp(result), with Δ = 2(d−1)·2^-24·Σ|x_i v_i| the
///   worst-case difference of two float32 summation orders (each within (d−1)·2^-24·Σ|x_i v_i| of the exact dot).
/// </summary>
public class HouseholderTests
{
    public static TheoryData<string, int, int, bool> Cases()
    {
        var data = new TheoryData<string, int, int, bool>();
        foreach (var dtype in new[] { "bfloat16", "float16", "float32" })
            foreach (var residual in new[] { false, true })
            {
                data.Add(dtype, 111, 4096, residual);  // 16-byte accesses
                data.Add(dtype, 37, 100, residual);    // d not a multiple of the vector width: one element at a time
                data.Add(dtype, 5, 64, residual);
            }
        data.Add("float32", 9, 16384, true);  // a 64 KiB row: more than the default 48 KiB of shared memory, one block per row
        // More rows than a GPU holds blocks of the streaming kernel at once (~800 on an H100), so each block takes
        // several rows with the next one's loads in flight: 2 and 4 packs of 16 bytes per thread.
        data.Add("bfloat16", 1200, 4096, true);
        data.Add("float32", 1200, 4096, true);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Reflection_matches_the_libtorch_expression(string dtypeName, int rows, int dim, bool withResidual)
    {
        var cuda = Gpu.Require();
        var dtype = PocInputsTests.DType(dtypeName);
        using var scope = NewDisposeScope();
        manual_seed(rows * 7919 + dim);
        var v = UnitVector(dim, dtype, cuda);
        var hidden = (3 * randn(rows, dim)).to(dtype).to(cuda);
        var residual = withResidual ? (10 * randn(rows, dim)).to(dtype).to(cuda) : null;
        var (hiddenBefore, residualBefore) = (hidden.clone(), residual?.clone());

        NativeKernels.HouseholderReflect(hidden, residual, v);

        AssertMatchesReference(hiddenBefore, hidden, v, $"{dtypeName} hidden [{rows}, {dim}]");
        if (residual is not null) AssertMatchesReference(residualBefore!, residual, v, $"{dtypeName} residual [{rows}, {dim}]");
    }

    [Fact]
    public void Rows_that_do_not_start_on_16_bytes_and_a_3d_batch_are_reflected_too()
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        manual_seed(5);
        var v = UnitVector(64, ScalarType.BFloat16, cuda);
        var storage = randn(2 * 3 * 64 + 1).to(ScalarType.BFloat16).to(cuda);
        var hidden = storage.narrow(0, 1, 2 * 3 * 64).view(2, 3, 64);
        var before = hidden.clone();
        NativeKernels.HouseholderReflect(hidden, null, v);
        AssertMatchesReference(before.view(6, 64), hidden.view(6, 64), v, "bf16 [2, 3, 64] at an odd element offset");
    }

    [Fact]
    public void Same_input_gives_the_same_bits()
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        manual_seed(11);
        var v = UnitVector(4096, ScalarType.BFloat16, cuda);
        var first = randn(64, 4096).to(ScalarType.BFloat16).to(cuda);
        var second = first.clone();
        NativeKernels.HouseholderReflect(first, null, v);
        NativeKernels.HouseholderReflect(second, null, v);
        Assert.Equal(PocInputsTests.Floats(first), PocInputsTests.Floats(second));
    }

    [Fact]
    public void Mismatched_vector_or_residual_is_refused()
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        var hidden = zeros([4, 64], ScalarType.BFloat16, cuda);
        Assert.Throws<ArgumentException>(() => NativeKernels.HouseholderReflect(hidden, null, zeros([32], ScalarType.BFloat16, cuda)));
        Assert.Throws<ArgumentException>(() => NativeKernels.HouseholderReflect(hidden, null, zeros([64], ScalarType.Float32, cuda)));
        Assert.Throws<ArgumentException>(() => NativeKernels.HouseholderReflect(hidden, zeros([4, 32], ScalarType.BFloat16, cuda), zeros([64], ScalarType.BFloat16, cuda)));
    }

    private static Tensor UnitVector(int dim, ScalarType dtype, Device cuda)
    {
        var v = randn(dim, dtype: ScalarType.Float32);
        return (v / v.norm()).to(dtype).to(cuda);
    }

    private static Tensor Expression(Tensor h, Tensor dot, Tensor v) => h - 2 * dot.unsqueeze(-1) * v;

    private static void AssertMatchesReference(Tensor before, Tensor ours, Tensor v, string what)
    {
        var dim = (int)v.shape[0];
        var rows = (int)(before.numel() / dim);
        var h = before.view(rows, dim);
        var actual = PocInputsTests.Floats(ours);
        var dot = matmul(h, v);
        if (h.dtype == ScalarType.Float32)
        {
            AssertWithinSummationBound(h, v, dot, actual, what);
            return;
        }

        // Expression(h, dot ± k steps) for k = 0, ±1, …: a row passes if one of them gives exactly our bits.
        var dots = PocInputsTests.Floats(dot);
        var maxSteps = h.dtype == ScalarType.Float16 ? 4 : 2;
        var candidates = Enumerable.Range(-maxSteps, 2 * maxSteps + 1)
            .Select(k => PocInputsTests.Floats(Expression(h, tensor(dots.Select(d => Step(d, k, h.dtype)).ToArray()).to(h.dtype).to(h.device), v)))
            .ToArray();
        var exact = candidates[maxSteps];
        for (var r = 0; r < rows; r++)
        {
            if (candidates.Any(c => c.AsSpan(r * dim, dim).SequenceEqual(actual.AsSpan(r * dim, dim)))) continue;
            var i = Enumerable.Range(0, dim).First(j => actual[r * dim + j] != exact[r * dim + j]);
            Assert.Fail($"{what}: row {r} matches no dot within {maxSteps} steps of cuBLAS's ({dots[r]:R}); first difference at column {i}: " +
                        $"libtorch {exact[r * dim + i]:R}, kernel {actual[r * dim + i]:R}, input {PocInputsTests.Floats(h[r])[i]:R}");
        }
    }

    /// <summary>The value k representable steps away from <paramref name="value"/> in <paramref name="dtype"/>'s sign–magnitude bits.</summary>
    private static float Step(float value, int k, ScalarType dtype)
    {
        if (dtype == ScalarType.Float16)
            return (float)BitConverter.Int16BitsToHalf((short)(BitConverter.HalfToInt16Bits((Half)value) + k));
        return BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(value) + (k << 16));
    }

    private static void AssertWithinSummationBound(Tensor h, Tensor v, Tensor dot, float[] actual, string what)
    {
        var dim = v.shape[0];
        var expected = PocInputsTests.Floats(Expression(h, dot, v));
        var h64 = h.to(ScalarType.Float64);
        var v64 = v.to(ScalarType.Float64);
        var delta = 2.0 * (dim - 1) * Math.Pow(2, -24) * matmul(h64.abs(), v64.abs());
        var product = (2 * dot.to(ScalarType.Float64)).unsqueeze(-1) * v64;
        var expectedT = tensor(expected, h.shape, ScalarType.Float32).to(ScalarType.Float64).to(h.device);
        var bound = 2 * v64.abs() * delta.unsqueeze(-1) + Math.Pow(2, -23) * (product.abs() + expectedT.abs());
        var error = (tensor(actual, h.shape, ScalarType.Float32).to(ScalarType.Float64).to(h.device) - expectedT).abs();
        var excess = (error - bound).flatten();
        var worst = excess.argmax().item<long>();
        var (errors, bounds) = (error.flatten().cpu().data<double>().ToArray(), bound.flatten().cpu().data<double>().ToArray());
        Assert.True(errors[worst] <= bounds[worst],
            $"{what}: element {worst} (row {worst / dim}, column {worst % dim}): libtorch {expected[worst]:R}, kernel {actual[worst]:R}, error {errors[worst]:E3} > bound {bounds[worst]:E3}");
    }
}

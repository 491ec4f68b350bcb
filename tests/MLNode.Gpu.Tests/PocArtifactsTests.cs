using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Engines.Llm;
using MLNode.Engines.Poc;
using MLNode.Protocol.Poc;
using MLNode.Runtime.Checkpoints;
using MLNode.Runtime.Native;
using MLNode.Tests;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Gpu.Tests;

/// <summary>
/// kernels/poc_artifacts.cu against the per-nonce C# reference (DimensionPick, ArtifactEncoder, float16), and
/// end to end through LlmPocProver against Gonka's recorded artifacts.
/// </summary>
/// <remarks>
/// Tolerances: the picked dimensions are integers and must be equal. The kernel follows the reference's
/// float32 rounding step by step except for the order in which it sums the d squares of the norm (in double,
/// like the reference, but as a tree); that changes the float32 norm only when the exact sum lies within
/// ~1e-16 of a rounding boundary, and then by one ulp, which can move a float16 value by at most one ulp.
/// </remarks>
public class PocArtifactsTests
{
    private const int MaxHalfUlps = 1;

    // Rows that are not finite (the reference drops them) and a zero row (which must stay zero).
    private static readonly Dictionary<int, float> SpecialRows = new() { [5] = float.NaN, [17] = float.PositiveInfinity, [30] = float.NegativeInfinity, [9] = 0f };

    public static TheoryData<int, int, ScalarType, int> KernelCases()
    {
        var data = new TheoryData<int, int, ScalarType, int>();
        foreach (var d in new[] { 64, 1024, 4096, 5120 })
        foreach (var k in new[] { 12, 32 })
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
            data.Add(d, k, dtype, 48);
        data.Add(4096, 12, ScalarType.Float16, 48);
        // The edges of k (a single dimension; every dimension; the kernel's largest k) and a large batch.
        data.Add(100, 1, ScalarType.Float32, 48);
        data.Add(64, 64, ScalarType.BFloat16, 48);
        data.Add(7168, 64, ScalarType.BFloat16, 48);
        data.Add(4096, 12, ScalarType.BFloat16, 1024);
        return data;
    }

    [Theory]
    [MemberData(nameof(KernelCases))]
    public void Kernel_matches_the_reference(int d, int k, ScalarType dtype, int batch)
    {
        var cuda = Gpu.Require();
        var round = new PocRound("9F3A6C1E2B7D4058A1C3E5F708192A3B", "02ab34cd56ef7890", SeqLen: 1, HiddenSize: d, KDim: k);
        // Spaced like the nonces of one node among several groups.
        long[] nonces = [.. Enumerable.Range(0, batch).Select(i => 3L + 7L * i)];
        using var scope = NewDisposeScope();
        var hidden = tensor(Rows(batch, d), [batch, d]).to(cuda).to(dtype);
        // What the kernel reads: the rows rounded to the activation dtype.
        var rows = hidden.to(ScalarType.Float32).cpu().data<float>().ToArray();

        var (artifacts, indices, finite) = ArtifactBatch.RunKernel(round, nonces, hidden);
        var gotValues = artifacts.to(ScalarType.Float32).cpu().data<float>().ToArray();
        var gotIndices = indices.cpu().data<int>().ToArray();
        var gotFinite = finite.cpu().data<bool>().ToArray();

        var offByOne = 0;
        for (var i = 0; i < batch; i++)
        {
            var what = $"d {d} k {k} {dtype}: row {i} (nonce {nonces[i]})";
            var row = rows.AsSpan(i * d, d);
            var expectedIndices = DimensionPick.Indices(round, nonces[i]);
            var actualIndices = gotIndices.AsSpan(i * k, k).ToArray();
            Assert.True(expectedIndices.SequenceEqual(actualIndices),
                $"{what}: expected indices [{string.Join(", ", expectedIndices)}], got [{string.Join(", ", actualIndices)}]");

            var expectedFinite = ArtifactEncoder.IsFinite(row);
            Assert.True(expectedFinite == gotFinite[i], $"{what}: finite should be {expectedFinite}");
            var actual = gotValues.AsSpan(i * k, k);
            if (!expectedFinite)
            {
                Assert.True(actual.ToArray().All(v => v == 0f), $"{what}: a row that is not finite must give zeros, got [{string.Join(", ", actual.ToArray())}]");
                continue;
            }

            var expected = ArtifactEncoder.Vector(round, nonces[i], row);
            for (var j = 0; j < k; j++)
            {
                var (want, got) = ((Half)expected[j], (Half)actual[j]);
                var ulps = Math.Abs(Ordered(want) - Ordered(got));
                Assert.True(ulps <= MaxHalfUlps,
                    $"{what} value {j}: expected {want} (float32 {expected[j]:R}, bits 0x{BitConverter.HalfToUInt16Bits(want):X4}), got {got} (bits 0x{BitConverter.HalfToUInt16Bits(got):X4}): {ulps} ulps");
                offByOne += ulps;
            }
        }
        TestContext.Current.TestOutputHelper?.WriteLine($"d {d} k {k} {dtype} B {batch}: {offByOne} of {batch * k} float16 values one ulp off the reference");
    }

    [Fact]
    public void Kernel_refuses_hidden_rows_that_are_not_floating_point()
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        var round = new PocRound("TEST_BLOCK", "test_pub_keys", SeqLen: 1, HiddenSize: 64);
        var error = Assert.Throws<NativeKernelException>(() => ArtifactBatch.RunKernel(round, [0, 1], zeros([2, 64], ScalarType.Int32, cuda)));
        Assert.Contains("not a floating type", error.Message);
    }

    public static TheoryData<string, string> FixtureCases()
    {
        var data = new TheoryData<string, string>();
        foreach (var model in new[] { "qwen3-tiny", "qwen2-tiny", "qwen3-moe-tiny" })
        foreach (var section in new[] { "bf16", "fp32" })
            data.Add(model, section);
        return data;
    }

    /// <summary>
    /// The served path on the GPU: the model in bf16 on CUDA, the artifacts from the kernel (LlmPocProver →
    /// ArtifactBatch), every nonce within the network's tolerance of the reference's bf16 and fp32 artifacts.
    /// </summary>
    [Theory]
    [MemberData(nameof(FixtureCases))]
    public async Task Bf16_model_on_the_gpu_gives_the_reference_artifacts(string model, string section)
    {
        var cuda = Gpu.Require();
        set_grad_enabled(false);
        var folder = Fixtures.Path("llm", model);
        var config = HfModelConfig.FromFile(Path.Combine(folder, "config.json"));
        using var qwen = LlmEngine.Load(config, folder, cuda, ScalarType.BFloat16, NullLogger.Instance, TestContext.Current.CancellationToken);
        var reference = PocReference.Load(model, section, qwen.Config.HiddenSize);

        var ours = await new LlmPocProver(qwen).ComputeAsync(reference.Round, reference.Nonces, TestContext.Current.CancellationToken);

        Assert.Equal(reference.Nonces, ours.Select(a => a.Nonce));
        var distances = ours.Select(a => (a.Nonce, L2: PocReference.L2(a.VectorB64, reference.Artifacts[a.Nonce]))).ToArray();
        TestContext.Current.TestOutputHelper?.WriteLine($"{model} vs {section}: mean L2 {distances.Average(x => x.L2):F4}, max {distances.Max(x => x.L2):F4}");
        foreach (var (nonce, l2) in distances)
            Assert.True(l2 <= PocReference.MaxL2, $"{model} bf16 on the GPU vs the {section} reference: nonce {nonce} L2 {l2:F4}");
    }

    /// <summary>Normal rows at scales 2^-4 … 2^4 (the normalisation must cancel them), with <see cref="SpecialRows"/>.</summary>
    private static float[] Rows(int batch, int d)
    {
        var values = PocRandom.Normal(2024, batch * d);
        for (var i = 0; i < batch; i++)
        {
            var row = values.AsSpan(i * d, d);
            var scale = MathF.ScaleB(1f, i % 9 - 4);
            for (var j = 0; j < d; j++) row[j] *= scale;
            if (SpecialRows.TryGetValue(i, out var special))
            {
                if (special == 0f) row.Clear();
                else row[(i * 131) % d] = special;
            }
        }
        return values;
    }

    /// <summary>Float16 bits as an integer that counts ulps across zero (±0 both map to 0).</summary>
    private static int Ordered(Half value)
    {
        var bits = BitConverter.HalfToUInt16Bits(value);
        return (bits & 0x8000) != 0 ? -(bits & 0x7FFF) : bits;
    }
}

using System.Runtime.InteropServices;
using MLNode.Protocol.Diffusion;
using MLNode.Runtime.Diffusion;
using MLNode.Tests;
using static TorchSharp.torch;

namespace MLNode.Gpu.Tests;

public class PhiloxNoiseTests
{
    public static TheoryData<string> Cases() => [.. WanNoiseFixture.Cases.Select(c => c.Name)];

    // The kernel runs cuRAND's own curand_init/curand_normal4 on the grid PyTorch launches on a 132-SM Hopper,
    // so every recorded value must come back with the same bits. The sum is the fixture's fp64 sum of the same
    // float32 values in another order: any fp64 order of ≤ 5M values below 7 in magnitude rounds by ≈ 1e-10
    // (u·√N times the partial sums), so 1e-6 separates "the same values" from "values within 1e-6 each".
    [Theory]
    [MemberData(nameof(Cases))]
    public void Kernel_reproduces_torch_randn_of_the_H100_fixture_bit_for_bit(string name)
    {
        var cuda = Gpu.Require();
        var recorded = WanNoiseFixture.Case(name);
        using var noise = LatentNoise.Randn(recorded.Shape, WanNoiseFixture.Seed, cuda);
        var values = Host(noise);
        AssertSameBits(recorded.First16, values, 0, $"{name} first16");
        AssertSameBits(recorded.Last16, values, values.Length - 16, $"{name} last16");
        if (recorded.At1000000 is { } at) AssertSameBits([at], values, 1_000_000, $"{name} at_1000000");
        var sum = WanNoiseFixture.Sum(values);
        Assert.True(Math.Abs(sum - recorded.Sum) <= 1e-6, $"{name} sum: fixture {recorded.Sum:R}, kernel {sum:R}");
    }

    // The 720p latent (4,838,400 elements: 1056 blocks, five draws per thread, the last partial), an odd count
    // and an advanced generator, against the C# reference within its stated error (sin/cos units vs MathF).
    [Theory]
    [InlineData(new long[] { 16, 21, 90, 160 }, 1234UL, 0UL)]
    [InlineData(new long[] { 1_000_003 }, 42UL, 12UL)]
    public void Kernel_matches_the_reference_within_its_stated_error(long[] shape, ulong seed, ulong offset)
    {
        var cuda = Gpu.Require();
        using var noise = LatentNoise.Randn(shape, seed, cuda, offset);
        var values = Host(noise);
        var reference = PhiloxNoise.Generate(seed, values.Length, offset);
        var worst = 0;
        for (var i = 0; i < values.Length; i++)
            if (Math.Abs(values[i] - reference[i]) > Math.Abs(values[worst] - reference[worst])) worst = i;
        var error = Math.Abs(values[worst] - reference[worst]);
        Assert.True(error <= PhiloxNoise.MaxReferenceError,
            $"[{string.Join(",", shape)}] seed {seed} offset {offset}: element {worst} kernel {values[worst]:R}, reference {reference[worst]:R} (error {error:E3})");
    }

    // Below one wave (159,744 elements on the smallest GPU listed in dit-wan22.md §3.2) PyTorch's grid is the same
    // on every GPU, so the kernel must equal torch.randn on this GPU whatever it is — including a generator that
    // already drew twice: PyTorch advances it by ((N−1)/(4·256·G) + 1)·4, here 4 per draw.
    [Fact]
    public void Kernel_equals_torch_randn_on_this_gpu_below_one_wave()
    {
        var cuda = Gpu.Require();
        // The default CUDA generator: TorchSharp's Generator(seed, device) is a CPU generator whatever the device.
        TorchSharp.torch.cuda.manual_seed(7);
        using var first = randn([1000], ScalarType.Float32, cuda);
        using var second = randn([3, 37], ScalarType.Float32, cuda);
        using var third = randn([4, 25_000], ScalarType.Float32, cuda);
        using var fresh = LatentNoise.Randn([1000], 7, cuda);
        using var advanced = LatentNoise.Randn([4, 25_000], 7, cuda, offset: 8);
        AssertSameBits(Host(first), Host(fresh), 0, "fresh generator, 1000 elements");
        AssertSameBits(Host(third), Host(advanced), 0, "third draw (offset 8), 100,000 elements");
    }

    private static float[] Host(Tensor noise)
    {
        using var cpu = noise.cpu();
        return cpu.data<float>().ToArray();
    }

    private static void AssertSameBits(float[] expected, float[] actual, int start, string what)
    {
        var bits = MemoryMarshal.Cast<float, int>(expected.AsSpan());
        var i = bits.CommonPrefixLength(MemoryMarshal.Cast<float, int>(actual.AsSpan(start, expected.Length)));
        if (i < expected.Length)
            Assert.Fail($"{what}: element {start + i} expected {expected[i]:R}, kernel {actual[start + i]:R} (first mismatch)");
    }
}

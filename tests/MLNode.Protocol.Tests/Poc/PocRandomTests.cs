using MLNode.Protocol.Poc;
using Xunit;

namespace MLNode.Protocol.Tests.Poc;

public class PocRandomTests
{
    // Every implementation of Box–Muller rounds log, sqrt, cos/sin and the final product its own way, each step
    // within an ulp or so, so two faithful implementations can differ by a few ulps. The reference's own CPU and
    // CUDA normals differ by up to 2 ulps (these nine values: 0 0 0 1 2 1 1 0 2). PortableMath gives the CPU
    // values bit for bit and the CUDA ones within 2 ulps here, the recorded CUDA inputs within 2 ulps
    // (PocInputsTests), and glibc's MathF within 3 ulps on 42M normals (97% identical), so 3 is the bound.
    internal const int NormalUlps = 3;

    [Fact]
    public void Uniform_MatchesTheReferenceBitForBit()
    {
        // Hash → float32 → division by 2^32 involves no transcendental function, so every bit must agree.
        var recorded = PocFixtures.Primitives.GetProperty("uniform_cpu");
        var seed = recorded.GetProperty("seed").GetUInt32();
        var expected = recorded.GetProperty("values").Floats();
        for (var i = 0; i < expected.Length; i++)
            Assert.Equal(expected[i], PocRandom.Uniform(seed, (uint)i));
    }

    // Keys whose hash under seed 2159479882 is the given value, found by inverting mix (each of its steps is
    // invertible) in Python and checked with the forward mix below.
    [Theory]
    [InlineData(1883433943u, 0xFFFFFFFFu, 1.0f)]        // rounds up to 2^32
    [InlineData(101083524u, 0xFFFFFF80u, 1.0f)]         // 2^32−128: a tie, rounds to the even 2^32
    [InlineData(3410700670u, 0xFFFFFF7Fu, 0.99999994f)] // 2^32−129 rounds down to 2^32−256 = (1 − 2^-24)·2^32
    [InlineData(813505528u, 0u, 0f)]
    public void Uniform_RoundsTheHashToFloat32First(uint key, uint hash, float expected)
    {
        const uint seed = 2159479882;
        Assert.Equal(hash, Murmur3.Mix(key, seed));
        Assert.Equal(expected, PocRandom.Uniform(seed, key));
    }

    [Theory]
    [InlineData("normal_cpu")]
    [InlineData("normal_cuda")]
    public void Normal_MatchesTheReferenceOnEitherDevice(string fixture)
    {
        var recorded = PocFixtures.Primitives.GetProperty(fixture);
        var seed = recorded.GetProperty("seed").GetUInt32();
        var count = recorded.GetProperty("n").GetInt32();
        var expected = recorded.GetProperty("values").Floats();
        Assert.Equal(count, expected.Length);
        FloatAssert.WithinUlps(expected, PocRandom.Normal(seed, count), NormalUlps, fixture);
    }

    // Bits of normal(1589641989, 256) that PortableMath and glibc's MathF.Log/SinCos round differently (each by one
    // ulp): they pin the generator to PortableMath, whose bits the CUDA kernel reproduces.
    [Theory]
    [InlineData(46, 0x3E6315A9u)]
    [InlineData(102, 0x3EE67787u)]
    [InlineData(143, 0x3E3183D9u)]
    [InlineData(174, 0xBD39A8B6u)]
    [InlineData(243, 0x3E30ED3Du)]
    [InlineData(255, 0xBD3F111Eu)]
    public void Normal_IsComputedWithPortableMath(int index, uint bits)
    {
        var values = PocRandom.Normal(1589641989, 256);
        Assert.Equal(bits, BitConverter.SingleToUInt32Bits(values[index]));
    }

    [Fact]
    public void Normal_GoldenBits()
    {
        uint[] expected = [0xBFD4F8FB, 0x3E6B1D14, 0x3F0FC741, 0xBF9DDC60, 0xBE2F446C, 0x3F352D35, 0x3ED302E2, 0x3D707D41, 0x3A38CF8F];
        Assert.Equal(expected, PocRandom.Normal(2159479882, 9).Select(BitConverter.SingleToUInt32Bits));
        // Hash 0 clamped to 1e-10f: the longest radius a float32 uniform allows.
        Assert.Equal([0xC041A6EDu, 0xC0C26004u], PocRandom.Normal(2271226130, 2).Select(BitConverter.SingleToUInt32Bits));
    }

    // Spec §3.1.3 lists normal(seed32("TEST_BLOCK_test_pub_keys_nonce0"), 6) computed in float64 and printed to
    // six decimals; float32 evaluation stays within 1e-5 of those values.
    [Fact]
    public void Normal_SpecTestVector()
    {
        float[] expected = [-1.302440f, 0.663528f, -0.774788f, -0.029534f, 1.416404f, 1.414563f];
        FloatAssert.Close(expected, PocRandom.Normal(1589641989, 6), 1e-5, 1, "normal(1589641989, 6)");
    }

    [Fact]
    public void Normal_ConcatenatesCosineAndSineHalves()
    {
        // With P pairs, elements j and P+j share a radius: z0_j² + z1_j² = −2 ln u1_j for the pair's uniform.
        const uint seed = 2159479882;
        var values = PocRandom.Normal(seed, 9);
        for (var j = 0; j < 4; j++)
        {
            var radiusSquared = -2.0 * Math.Log(Math.Max(PocRandom.Uniform(seed, (uint)j), 1e-10f));
            var actual = (double)values[j] * values[j] + (double)values[5 + j] * values[5 + j];
            Assert.Equal(radiusSquared, actual, radiusSquared * 1e-6);
        }
    }

    [Fact]
    public void Normal_ClampsAZeroUniform()
    {
        // Seed 2271226130 hashes key 0 to 0 (mix inverted in Python): u1 is clamped to 1e-10f instead of
        // taking log(0), giving radius² = −2 ln(1e-10f) split over the pair's cosine and sine.
        const uint seed = 2271226130;
        Assert.Equal(0u, Murmur3.Mix(0, seed));
        var values = PocRandom.Normal(seed, 2);
        var radiusSquared = -2.0 * Math.Log(1e-10f);
        Assert.Equal(radiusSquared, (double)values[0] * values[0] + (double)values[1] * values[1], radiusSquared * 1e-6);
    }

    [Fact]
    public void Normal_DropsTheLastSineForOddLengths()
    {
        const uint seed = 805588444;
        var even = PocRandom.Normal(seed, 10);
        var odd = PocRandom.Normal(seed, 9);
        // P = 5 for both: the odd stream is the even one without its last element.
        Assert.Equal(even[..9], odd);
    }
}

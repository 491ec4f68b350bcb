using MLNode.Protocol.Poc;
using Xunit;

namespace MLNode.Protocol.Tests.Poc;

public class HouseholderTests
{
    [Fact]
    public void LayerVector_MatchesTheRecordedVector()
    {
        var recorded = PocFixtures.Primitives.GetProperty("householder_layer0");
        var expected = recorded.GetProperty("v").Floats();
        var v = Householder.LayerVector(
            recorded.GetProperty("block_hash").GetString()!,
            recorded.GetProperty("layer").GetInt32(),
            recorded.GetProperty("dim").GetInt32());
        // Normals agree to ~1 ulp (see PocRandomTests); dividing by a norm that agrees to ~1 ulp keeps every
        // component within a few ulps. Components are ~0.1, so the floor 0.1 bounds the error at 1e-7 absolute
        // (the smallest recorded component is 3.5e-3, where one ulp of the unnormalised normal is 4e-9).
        FloatAssert.Close(expected, v, 2e-6, 0.1, "householder_layer0");
    }

    [Fact]
    public void LayerVector_IsAUnitVector()
    {
        var v = Householder.LayerVector("TEST_BLOCK", 3, 4096);
        Assert.Equal(1.0, Math.Sqrt(v.Sum(x => (double)x * x)), 1e-6);
    }

    [Fact]
    public void Reflect_IsAnInvolutionThatKeepsTheNorm()
    {
        var v = Householder.LayerVector("TEST_BLOCK", 0, 64);
        var x = PocRandom.Normal(12345, 64);
        var reflected = x.ToArray();
        Householder.Reflect(reflected, v);

        // Float32 arithmetic on 64 values of magnitude ≤ ~4: errors of a few 1e-7 per element.
        Assert.Equal(Math.Sqrt(x.Sum(a => (double)a * a)), Math.Sqrt(reflected.Sum(a => (double)a * a)), 1e-5);
        // H v = −v.
        var reflectedV = v.ToArray();
        Householder.Reflect(reflectedV, v);
        FloatAssert.Close([.. v.Select(a => -a)], reflectedV, 1e-6, 1, "H v");
        // H H x = x.
        Householder.Reflect(reflected, v);
        FloatAssert.Close(x, reflected, 1e-5, 1, "H H x");
    }
}

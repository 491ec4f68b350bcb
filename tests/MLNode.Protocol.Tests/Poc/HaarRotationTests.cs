using MLNode.Protocol.Poc;
using Xunit;

namespace MLNode.Protocol.Tests.Poc;

public class HaarRotationTests
{
    [Fact]
    public void Apply_MatchesTheRecordedRotation()
    {
        var recorded = PocFixtures.Primitives.GetProperty("haar_k12");
        var inputs = PocFixtures.Primitives.GetProperty("inputs_weak");
        var round = new PocRound(
            inputs.GetProperty("block_hash").GetString()!,
            inputs.GetProperty("public_key").GetString()!,
            SeqLen: 1,
            HiddenSize: 64);
        var nonces = recorded.GetProperty("nonces").Longs();
        var xs = recorded.GetProperty("x").EnumerateArray().ToArray();
        var ys = recorded.GetProperty("y").EnumerateArray().ToArray();
        for (var i = 0; i < nonces.Length; i++)
        {
            var x = xs[i].Floats();
            HaarRotation.Apply(round, nonces[i], x);
            // Eleven float32 reflections of 12 values of magnitude ~1: each step rounds every element (and its dot
            // product is summed in another order on the GPU), so a few ulps (≈ 1e-7 each) accumulate; 2e-6 with a
            // floor at magnitude 1 is ~16 ulps.
            FloatAssert.Close(ys[i].Floats(), x, 2e-6, 1, $"haar nonce {nonces[i]}");
        }
    }

    [Fact]
    public void Apply_IsARotation()
    {
        var round = new PocRound("TEST_BLOCK", "test_pub_keys", SeqLen: 1, HiddenSize: 64);
        var x = PocRandom.Normal(99, 12);
        var rotated = x.ToArray();
        HaarRotation.Apply(round, 17, rotated);
        Assert.False(x.SequenceEqual(rotated));
        Assert.Equal(Math.Sqrt(x.Sum(a => (double)a * a)), Math.Sqrt(rotated.Sum(a => (double)a * a)), 1e-5);
    }

    [Fact]
    public void UnitVectors_AreTheReflectionsApplyUses()
    {
        var round = new PocRound("TEST_BLOCK", "test_pub_keys", SeqLen: 1, HiddenSize: 64);
        var k = round.KDim;
        var vectors = new float[HaarRotation.UnitVectorsLength(k)];
        HaarRotation.UnitVectors(round, 5, vectors);

        var x = PocRandom.Normal(98, k);
        var reflected = x.ToArray();
        for (var step = 0; step < k - 1; step++)
        {
            var w = vectors.AsSpan(step * k, k);
            Assert.Equal(1.0, Math.Sqrt(w.ToArray().Sum(a => (double)a * a)), 1e-6);
            Householder.Reflect(reflected, w);
        }
        HaarRotation.Apply(round, 5, x);
        Assert.Equal(x, reflected);
    }

    [Fact]
    public void UnitVectors_RejectsADestinationOfAnotherLength()
    {
        var round = new PocRound("TEST_BLOCK", "test_pub_keys", SeqLen: 1, HiddenSize: 64);
        Assert.Throws<ArgumentException>(() => HaarRotation.UnitVectors(round, 0, new float[11 * 11]));
    }

    [Fact]
    public void Apply_RejectsAVectorOfAnotherLength()
    {
        var round = new PocRound("TEST_BLOCK", "test_pub_keys", SeqLen: 1, HiddenSize: 64);
        Assert.Throws<ArgumentException>(() => HaarRotation.Apply(round, 0, new float[11]));
    }
}

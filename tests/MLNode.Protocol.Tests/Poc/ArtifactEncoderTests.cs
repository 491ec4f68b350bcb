using MLNode.Protocol.Poc;
using Xunit;

namespace MLNode.Protocol.Tests.Poc;

public class ArtifactEncoderTests
{
    private static readonly PocRound Round = new("TEST_BLOCK", "test_pub_keys", SeqLen: 1024, HiddenSize: 1024);

    [Fact]
    public void Vector_IsTheNormalisedRotationOfThePickedDimensions()
    {
        var hidden = PocRandom.Normal(7, Round.HiddenSize);
        for (var nonce = 0L; nonce < 8; nonce++)
        {
            var indices = DimensionPick.Indices(Round, nonce);
            var picked = indices.Select(j => hidden[j]).ToArray();
            HaarRotation.Apply(Round, nonce, picked);
            var norm = Math.Sqrt(picked.Sum(x => (double)x * x));
            float[] expected = [.. picked.Select(x => (float)(x / norm))];

            // Normalising before or after picking changes only float32 rounding: a few ulps (1e-7) per value.
            FloatAssert.Close(expected, ArtifactEncoder.Vector(Round, nonce, hidden), 1e-6, 1, $"nonce {nonce}");
        }
    }

    [Fact]
    public void Encode_DoesNotDependOnTheScaleOfTheHiddenState()
    {
        // Scaling by a power of two is exact in float32 and cancels in the normalisation bit for bit.
        var hidden = PocRandom.Normal(8, Round.HiddenSize);
        var scaled = hidden.Select(x => x * 64f).ToArray();
        Assert.Equal(ArtifactEncoder.Encode(Round, 3, hidden), ArtifactEncoder.Encode(Round, 3, scaled));
    }

    [Fact]
    public void Encode_GivesAUnitFloat16Vector()
    {
        var b64 = ArtifactEncoder.Encode(Round, 0, PocRandom.Normal(9, Round.HiddenSize));
        Assert.Equal(32, b64.Length);
        Assert.True(ArtifactCodec.TryDecode(b64, Round.KDim, out var vector));
        // Float16 rounding: see ArtifactCodecTests.
        Assert.Equal(1.0, Math.Sqrt(vector.Sum(x => (double)x * x)), 5e-4);
    }

    [Fact]
    public void Encode_KeepsAZeroHiddenStateZero() =>
        Assert.Equal(ArtifactCodec.Encode(new float[12]), ArtifactEncoder.Encode(Round, 0, new float[Round.HiddenSize]));

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void NonFiniteHiddenStates_AreRejected(float bad)
    {
        var hidden = PocRandom.Normal(10, Round.HiddenSize);
        Assert.True(ArtifactEncoder.IsFinite(hidden));
        hidden[517] = bad;
        Assert.False(ArtifactEncoder.IsFinite(hidden));
        Assert.Throws<ArgumentException>(() => ArtifactEncoder.Encode(Round, 0, hidden));
    }

    [Fact]
    public void Encode_RejectsAHiddenStateOfAnotherSize() =>
        Assert.Throws<ArgumentException>(() => ArtifactEncoder.Encode(Round, 0, new float[Round.HiddenSize - 1]));
}

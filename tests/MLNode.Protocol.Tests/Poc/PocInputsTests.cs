using System.Text.Json;
using MLNode.Protocol.Poc;
using Xunit;

namespace MLNode.Protocol.Tests.Poc;

public class PocInputsTests
{
    // Elements were recorded on CUDA: see PocRandomTests.NormalUlps (observed here: at most 2 ulps).
    private const int ElementUlps = PocRandomTests.NormalUlps;

    // Sums (in double) of 512 values: each may differ from the recorded one by ElementUlps (≤ 3 · 4.8e-7 for
    // |x| < 8; the largest Box–Muller output is √(−2 ln 1e-10) ≈ 6.8), so the sums by at most
    // 512 · 1.43e-6 ≈ 7.3e-4 however the ulps line up. Observed differences are ≤ 1e-6; a wrong stream or
    // order moves a sum by whole units.
    private const double SumTolerance = 7.5e-4;

    [Theory]
    [InlineData("inputs_weak", false)]
    [InlineData("inputs_strong", true)]
    public void Fill_MatchesRecordedInputs(string fixture, bool strong)
    {
        var recorded = PocFixtures.Primitives.GetProperty(fixture);
        var round = RoundOf(recorded, strong);
        var nonces = recorded.GetProperty("nonces").Longs();
        var first8 = recorded.GetProperty("first8").EnumerateArray().ToArray();
        var last8 = recorded.GetProperty("last8").EnumerateArray().ToArray();
        var sums = recorded.GetProperty("sum").Doubles();

        var inputs = new float[round.InputLength];
        for (var i = 0; i < nonces.Length; i++)
        {
            PocInputs.Fill(round, nonces[i], inputs);
            FloatAssert.WithinUlps(first8[i].Floats(), inputs.AsSpan(0, 8), ElementUlps, $"{fixture} nonce {nonces[i]} first8");
            FloatAssert.WithinUlps(last8[i].Floats(), inputs.AsSpan(inputs.Length - 8), ElementUlps, $"{fixture} nonce {nonces[i]} last8");
            Assert.Equal(sums[i], inputs.Sum(x => (double)x), SumTolerance);
        }
    }

    [Fact]
    public void FillBatch_LaysNoncesOutOneAfterAnother()
    {
        var round = RoundOf(PocFixtures.Primitives.GetProperty("inputs_strong"), strong: true);
        long[] nonces = [7, 0, 1];
        var batch = new float[nonces.Length * round.InputLength];
        PocInputs.FillBatch(round, nonces, batch);

        var single = new float[round.InputLength];
        for (var i = 0; i < nonces.Length; i++)
        {
            PocInputs.Fill(round, nonces[i], single);
            Assert.Equal(single, batch.AsSpan(i * round.InputLength, round.InputLength).ToArray());
        }
    }

    // Inputs large enough that every stream (the weak one, and each of the eight strong segments) is cut into
    // several parallel chunks, with odd lengths, must equal the one-thread streams bit for bit.
    [Fact]
    public void FillBatch_ParallelChunksAreBitIdenticalToOneStream()
    {
        var weak = new PocRound("TEST_BLOCK", "test_pub_keys", SeqLen: 257, HiddenSize: 2049);
        var strong = weak with { StrongRng = true };
        long[] nonces = [3, 11];

        var batch = new float[nonces.Length * weak.InputLength];
        PocInputs.FillBatch(weak, nonces, batch);
        for (var i = 0; i < nonces.Length; i++)
        {
            var expected = PocRandom.Normal(PocSeeds.Input(weak.BlockHash, weak.PublicKey, nonces[i]), weak.InputLength);
            Assert.True(expected.AsSpan().SequenceEqual(batch.AsSpan(i * weak.InputLength, weak.InputLength)), $"weak nonce {nonces[i]}");
        }

        PocInputs.FillBatch(strong, nonces, batch);
        var subSeeds = new uint[PocSeeds.StrongSubSeedCount];
        var segment = (weak.InputLength + 7) / 8;
        for (var i = 0; i < nonces.Length; i++)
        {
            PocSeeds.StrongInput(strong.BlockHash, strong.PublicKey, nonces[i], subSeeds);
            var expected = subSeeds.SelectMany((seed, j) => PocRandom.Normal(seed, Math.Min(segment, weak.InputLength - j * segment))).ToArray();
            Assert.True(expected.AsSpan().SequenceEqual(batch.AsSpan(i * weak.InputLength, weak.InputLength)), $"strong nonce {nonces[i]}");
        }
    }

    [Fact]
    public void StrongInputs_SkipEmptySegments()
    {
        // L·d = 9 gives S = 2: segments of 2, 2, 2, 2, 1 and no sixth to eighth segment.
        var round = new PocRound("TEST_BLOCK", "test_pub_keys", SeqLen: 3, HiddenSize: 3, KDim: 1, StrongRng: true);
        var inputs = new float[9];
        PocInputs.Fill(round, 0, inputs);

        var subSeeds = new uint[PocSeeds.StrongSubSeedCount];
        PocSeeds.StrongInput(round.BlockHash, round.PublicKey, 0, subSeeds);
        float[] expected = [.. PocRandom.Normal(subSeeds[0], 2), .. PocRandom.Normal(subSeeds[1], 2), .. PocRandom.Normal(subSeeds[2], 2),
            .. PocRandom.Normal(subSeeds[3], 2), .. PocRandom.Normal(subSeeds[4], 1)];
        Assert.Equal(expected, inputs);
    }

    [Fact]
    public void Seeds_AreNonceMajor()
    {
        var weak = new PocRound("TEST_BLOCK", "test_pub_keys", SeqLen: 4, HiddenSize: 16);
        long[] nonces = [0, 5];
        Assert.Equal(nonces.Select(n => PocSeeds.Input(weak.BlockHash, weak.PublicKey, n)), PocInputs.Seeds(weak, nonces));

        var strong = PocInputs.Seeds(weak with { StrongRng = true }, nonces);
        var subSeeds = new uint[PocSeeds.StrongSubSeedCount];
        for (var i = 0; i < nonces.Length; i++)
        {
            PocSeeds.StrongInput(weak.BlockHash, weak.PublicKey, nonces[i], subSeeds);
            Assert.Equal(subSeeds, strong.AsSpan(i * subSeeds.Length, subSeeds.Length).ToArray());
        }
        // Spec §3.1.3: the stronger RNG's sub-seeds of TEST_BLOCK / test_pub_keys nonce 0.
        Assert.Equal([1589641989u, 1811054632, 2092028337, 1372497962, 2845890790, 282738888, 1675009164, 1960591446], strong[..8]);
    }

    [Fact]
    public void Fill_RejectsAWrongSizedBuffer()
    {
        var round = new PocRound("TEST_BLOCK", "test_pub_keys", SeqLen: 4, HiddenSize: 16);
        Assert.Throws<ArgumentException>(() => PocInputs.Fill(round, 0, new float[63]));
        Assert.Throws<ArgumentException>(() => PocInputs.FillBatch(round, [0, 1], new float[64]));
    }

    private static PocRound RoundOf(JsonElement recorded, bool strong) => new(
        recorded.GetProperty("block_hash").GetString()!,
        recorded.GetProperty("public_key").GetString()!,
        recorded.GetProperty("seq_len").GetInt32(),
        recorded.GetProperty("dim").GetInt32(),
        StrongRng: strong);
}

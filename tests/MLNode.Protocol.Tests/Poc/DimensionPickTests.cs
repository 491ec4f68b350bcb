using System.Text.Json;
using MLNode.Protocol.Poc;
using Xunit;

namespace MLNode.Protocol.Tests.Poc;

public class DimensionPickTests
{
    public static TheoryData<string, string> RecordedPicks()
    {
        var data = new TheoryData<string, string>();
        foreach (var name in new[] { "pick_d64_k12", "pick_d1024_k12", "pick_d4096_k12" })
            data.Add("primitives", name);
        foreach (var property in PocFixtures.PickOrders.EnumerateObject())
            data.Add("pick_orders", property.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(RecordedPicks))]
    public void Indices_MatchTheReferenceOrderExactly(string file, string name)
    {
        var recorded = (file == "primitives" ? PocFixtures.Primitives : PocFixtures.PickOrders).GetProperty(name);
        var round = RoundOf(recorded);
        var nonces = recorded.GetProperty("nonces").Longs();
        var expected = recorded.GetProperty("indices_in_reference_order").EnumerateArray().Select(e => e.Ints()).ToArray();
        Assert.Equal(nonces.Length, expected.Length);
        for (var i = 0; i < nonces.Length; i++)
            Assert.True(expected[i].SequenceEqual(DimensionPick.Indices(round, nonces[i])),
                $"{name} nonce {nonces[i]}: expected [{string.Join(", ", expected[i])}], got [{string.Join(", ", DimensionPick.Indices(round, nonces[i]))}]");
    }

    [Fact]
    public void PickOrders_HoldTheAdvertisedNumberOfCases()
    {
        // fixtures/README.md: 393 recorded cases in all; pick_orders.json adds 42 nonces for each of its sizes.
        var primitives = new[] { "pick_d64_k12", "pick_d1024_k12", "pick_d4096_k12" }
            .Sum(name => PocFixtures.Primitives.GetProperty(name).GetProperty("nonces").GetArrayLength());
        var orders = PocFixtures.PickOrders.EnumerateObject().Sum(p => p.Value.GetProperty("nonces").GetArrayLength());
        Assert.Equal(393, primitives + orders);
    }

    [Theory]
    [InlineData(64, 12)]
    [InlineData(5120, 12)]
    [InlineData(100, 1)]
    [InlineData(30, 30)]
    public void Indices_AreTheSmallestScoresWithTheBoundaryLast(int hiddenSize, int k)
    {
        var round = new PocRound("TEST_BLOCK", "test_pub_keys", SeqLen: 1, HiddenSize: hiddenSize, KDim: k);
        for (var nonce = 0L; nonce < 20; nonce++)
        {
            var seed = PocSeeds.Pick(round.BlockHash, round.PublicKey, nonce, k);
            var byScore = Enumerable.Range(0, hiddenSize).OrderBy(j => Murmur3.Mix((uint)j, seed)).Take(k).ToArray();
            int[] expected = [.. byScore[..^1].Order(), byScore[^1]];
            Assert.Equal(expected, DimensionPick.Indices(round, nonce));
        }
    }

    private static PocRound RoundOf(JsonElement recorded)
    {
        // The pick fixtures were recorded with the block hash and key of the input fixtures.
        var inputs = PocFixtures.Primitives.GetProperty("inputs_weak");
        return new PocRound(
            inputs.GetProperty("block_hash").GetString()!,
            inputs.GetProperty("public_key").GetString()!,
            SeqLen: 1,
            HiddenSize: recorded.GetProperty("dim").GetInt32(),
            KDim: recorded.GetProperty("k").GetInt32());
    }
}

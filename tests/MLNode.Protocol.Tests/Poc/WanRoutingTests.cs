using System.Collections.Immutable;
using System.Text.Json;
using MLNode.Protocol.Poc;
using Xunit;

namespace MLNode.Protocol.Tests.Poc;

public class WanRoutingTests
{
    private const string BlockHash = "TEST_BLOCK";
    private const string PublicKey = "test_pub_keys";

    // docs/wan-poc-routing.md §6, computed independently with Python's hashlib and the spec's mix.
    [Theory]
    [InlineData(0L, 0x2b77ff10u, 0x4b03e418u, 11, 969, 0)]
    [InlineData(1L, 0x5b0d908cu, 0x42576373u, 10, 972, 0)]
    [InlineData(2L, 0xae3d58aau, 0x69da9136u, 16, 947, 0)]
    [InlineData(3L, 0x4a038050u, 0x559cbc73u, 13, 961, 0)]
    [InlineData(4L, 0x8c46166cu, 0x30af4f1au, 7, 982, 0)]
    [InlineData(5L, 0x6c96d05cu, 0x89e3b903u, 21, 915, 0)]
    [InlineData(6L, 0x2fb231eau, 0x83a3d271u, 20, 922, 0)]
    [InlineData(7L, 0x0c6838d6u, 0xdaa66189u, 34, 678, 1)]
    [InlineData(8L, 0xaa3ccc87u, 0x5aed29d8u, 14, 956, 0)]
    [InlineData(9L, 0x0f9730beu, 0xc1901fb9u, 30, 799, 1)]
    [InlineData(10L, 0x117153d9u, 0x66d9c1dcu, 16, 947, 0)]
    [InlineData(11L, 0x25d63723u, 0xaed8e8b2u, 27, 852, 1)]
    [InlineData(1000L, 0x36e01344u, 0xf99ba0f6u, 39, 235, 1)]
    [InlineData(123456789L, 0xbdba788au, 0x2fedfe9cu, 7, 982, 0)]
    public void Route_MatchesTheSpecTestVectors(long nonce, uint seed, uint hash, int index, int timestep, int expert)
    {
        Assert.Equal(seed, WanRouting.Seed(BlockHash, PublicKey, nonce));
        Assert.Equal(hash, Murmur3.Mix(0, seed));
        Assert.Equal(index, WanRouting.TimestepIndex(seed, WanPocSchedule.T2VA14B.Timesteps.Length));
        Assert.Equal(new WanRoute(timestep, expert), WanRouting.Route(seed, WanPocSchedule.T2VA14B));
    }

    [Fact]
    public void GroupOrder_MatchesTheSpecTestVector()
    {
        var experts = Enumerable.Range(0, 12).Select(n => WanRouting.Route(WanRouting.Seed(BlockHash, PublicKey, n), WanPocSchedule.T2VA14B).Expert).ToArray();
        Assert.Equal([0, 1, 2, 3, 4, 5, 6, 8, 10, 7, 9, 11], WanRouting.GroupOrder(experts, out var highNoiseRows));
        Assert.Equal(9, highNoiseRows);
    }

    [Fact]
    public void GroupOrder_IsAStablePartition()
    {
        int[] experts = [1, 0, 1, 1, 0, 0, 1, 0];
        var order = WanRouting.GroupOrder(experts, out var high);
        Assert.Equal(4, high);
        Assert.Equal([1, 4, 5, 7, 0, 2, 3, 6], order);
        Assert.Equal([.. Enumerable.Range(0, 8)], order.Order());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void GroupOrder_OfOneExpertIsTheIdentity(int expert)
    {
        var order = WanRouting.GroupOrder([expert, expert, expert], out var high);
        Assert.Equal([0, 1, 2], order);
        Assert.Equal(expert == WanRouting.HighNoiseExpert ? 3 : 0, high);
    }

    [Fact]
    public void Schedule_IsTheOfficialGridTheReferenceRunRecorded()
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(MLNode.Tests.Fixtures.Path("wan", "wan-tiny", "reference_outputs.json")));
        var grid = document.RootElement.GetProperty("scheduler_grids").GetProperty("official_40_12.0").GetProperty("timesteps").Ints();
        Assert.Equal(grid, WanPocSchedule.T2VA14B.Timesteps);
        Assert.Equal(26, grid.Count(t => t >= WanPocSchedule.T2VA14B.Boundary));
    }

    [Fact]
    public void Expert_FollowsFromTheTimestepAtTheBoundary()
    {
        Assert.Equal(WanRouting.HighNoiseExpert, WanRouting.Expert(875, 875));
        Assert.Equal(WanRouting.LowNoiseExpert, WanRouting.Expert(874, 875));
    }

    [Fact]
    public void TimestepIndex_SpansTheGrid()
    {
        var seeds = Enumerable.Range(0, 4000).Select(n => WanRouting.Seed(BlockHash, PublicKey, n));
        var indices = seeds.Select(s => WanRouting.TimestepIndex(s, 40)).ToHashSet();
        Assert.Equal(40, indices.Count);
        Assert.All(indices, i => Assert.InRange(i, 0, 39));
    }

    [Fact]
    public void Schedule_RefusesTimestepsOutsideTraining()
    {
        Assert.Throws<ArgumentException>(() => new WanPocSchedule([1000], 875));
        Assert.Throws<ArgumentException>(() => new WanPocSchedule(ImmutableArray<int>.Empty, 875));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WanPocSchedule([999], 1001));
    }
}

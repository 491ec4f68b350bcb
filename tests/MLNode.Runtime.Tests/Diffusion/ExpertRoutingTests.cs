using MLNode.Protocol.Poc;
using MLNode.Runtime.Diffusion;
using static TorchSharp.torch;

namespace MLNode.Runtime.Tests.Diffusion;

public class ExpertRoutingTests
{
    private static uint[] Seeds(int count) =>
        [.. Enumerable.Range(0, count).Select(n => WanRouting.Seed("TEST_BLOCK", "test_pub_keys", n))];

    [Fact]
    public void Route_GivesEachNoncesTimestepAndExpert()
    {
        var seeds = Seeds(12);
        var (timesteps, experts) = ExpertRouting.Route(seeds, WanPocSchedule.T2VA14B, CPU);
        using (timesteps)
        using (experts)
        {
            // docs/wan-poc-routing.md §6
            Assert.Equal([969L, 972, 947, 961, 982, 915, 922, 678, 956, 799, 947, 852], timesteps.data<long>().ToArray());
            Assert.Equal([0L, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1], experts.data<long>().ToArray());
        }
    }

    [Fact]
    public void Group_IsTheStablePartitionByExpert()
    {
        using var experts = tensor(new long[] { 1, 0, 1, 1, 0, 0, 1, 0 });
        using var groups = ExpertRouting.Group(experts);
        Assert.Equal([1L, 4, 5, 7, 0, 2, 3, 6], groups.Order.data<long>().ToArray());
        Assert.Equal(4, groups.HighNoiseRows);
        Assert.Equal(4, groups.LowNoiseRows);
    }

    [Fact]
    public void Permute_PutsEachExpertsRowsInOneSliceAndUnpermuteRestoresTheBatch()
    {
        using var scope = NewDisposeScope();
        using var groups = ExpertRouting.Group(tensor(new long[] { 1, 0, 1, 1, 0 }));
        // Row i holds the values 100·i + 0…5 in bf16 (exact), so every row is recognisable after the moves.
        var rows = (arange(5, dtype: ScalarType.Float32).reshape(5, 1, 1) * 100 + arange(6, dtype: ScalarType.Float32).reshape(1, 2, 3))
            .to(ScalarType.BFloat16);
        var grouped = ExpertRouting.Permute(rows, groups);
        Assert.Equal([100f, 400f], FirstValues(groups.Slice(grouped, WanRouting.HighNoiseExpert)));
        Assert.Equal([0f, 200f, 300f], FirstValues(groups.Slice(grouped, WanRouting.LowNoiseExpert)));

        var restored = ExpertRouting.Unpermute(grouped, groups);
        Assert.Equal(AllValues(rows), AllValues(restored));
    }

    private static float[] FirstValues(Tensor rows) => rows[.., 0, 0].to(ScalarType.Float32).data<float>().ToArray();

    private static float[] AllValues(Tensor rows) => rows.to(ScalarType.Float32).data<float>().ToArray();

    [Fact]
    public void Slice_RefusesAnExpertWan22DoesNotHave()
    {
        using var experts = tensor(new long[] { 0 });
        using var groups = ExpertRouting.Group(experts);
        using var rows = zeros(1, 4);
        Assert.Throws<ArgumentOutOfRangeException>(() => groups.Slice(rows, 2));
    }
}

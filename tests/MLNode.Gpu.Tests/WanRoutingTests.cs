using MLNode.Protocol.Poc;
using MLNode.Runtime.Diffusion;
using MLNode.Runtime.Native;
using static TorchSharp.torch;

namespace MLNode.Gpu.Tests;

// Routing is integer math and row moves are copies: kernel and reference must agree exactly.
public class WanRoutingTests
{
    private static uint[] Seeds(int count) =>
        [.. Enumerable.Range(0, count).Select(n => WanRouting.Seed("TEST_BLOCK", "test_pub_keys", n))];

    [Theory]
    [InlineData(1)]
    [InlineData(12)]
    [InlineData(1024)]
    public void Derive_kernel_gives_the_references_timesteps_and_experts(int batch)
    {
        var cuda = Gpu.Require();
        var seeds = Seeds(batch);
        var (timesteps, experts) = ExpertRouting.Route(seeds, WanPocSchedule.T2VA14B, cuda);
        using (timesteps)
        using (experts)
        {
            var t = Longs(timesteps);
            var e = Longs(experts);
            for (var i = 0; i < batch; i++)
            {
                var expected = WanRouting.Route(seeds[i], WanPocSchedule.T2VA14B);
                Assert.True(expected.Timestep == t[i] && expected.Expert == e[i],
                    $"nonce {i} (seed 0x{seeds[i]:x8}): reference {expected}, kernel t {t[i]} expert {e[i]}");
            }
        }
    }

    private static readonly Dictionary<string, long[]> Patterns = new()
    {
        ["one high-noise row"] = [0],
        ["one low-noise row"] = [1],
        ["all high-noise"] = [0, 0, 0, 0, 0, 0, 0],
        ["all low-noise"] = [1, 1, 1, 1, 1, 1, 1],
        ["alternating, 33 rows"] = [.. Enumerable.Range(0, 33).Select(i => (long)(i % 2))],
        ["1024 seeded nonces"] = [.. Seeds(1024).Select(s => (long)WanRouting.Route(s, WanPocSchedule.T2VA14B).Expert)],
    };

    public static TheoryData<string> ExpertPatterns() => [.. Patterns.Keys];

    [Theory]
    [MemberData(nameof(ExpertPatterns))]
    public void Group_kernel_gives_the_stable_partition_of_the_reference(string pattern)
    {
        var cuda = Gpu.Require();
        var experts = Patterns[pattern];
        using var onDevice = tensor(experts, ScalarType.Int64, cuda);
        using var groups = ExpertRouting.Group(onDevice);
        var expected = WanRouting.GroupOrder([.. experts.Select(e => (int)e)], out var high);
        var order = Longs(groups.Order);
        Assert.Equal(high, groups.HighNoiseRows);
        for (var j = 0; j < experts.Length; j++)
            Assert.True(expected[j] == order[j], $"{pattern}: slot {j} reference row {expected[j]}, kernel row {order[j]} (first mismatch)");
    }

    // Row sizes that take every copy unit: 16 B (latent rows), 8, 4, 2 and 1 byte(s).
    [Theory]
    [InlineData(8, new long[] { 16, 21, 60, 104 }, ScalarType.Float32)]
    [InlineData(64, new long[] { 16, 5, 60, 104 }, ScalarType.BFloat16)]
    [InlineData(5, new long[] { 2 }, ScalarType.Float32)]
    [InlineData(7, new long[] { 5 }, ScalarType.Float32)]
    [InlineData(9, new long[] { 3 }, ScalarType.Float16)]
    [InlineData(3, new long[] { 7 }, ScalarType.Byte)]
    public void Permute_kernels_equal_index_select_and_index_copy(int batch, long[] row, ScalarType dtype)
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        var experts = Seeds(batch).Select(s => (long)WanRouting.Route(s, WanPocSchedule.T2VA14B).Expert).ToArray();
        using var groups = ExpertRouting.Group(tensor(experts, ScalarType.Int64, cuda));
        long[] shape = [batch, .. row];
        var rows = (dtype == ScalarType.Byte
            ? randint(0, 256, shape, ScalarType.Byte, cuda)
            : randn(shape, ScalarType.Float32, cuda).to(dtype));
        Assert.True(NativeKernels.Handles(rows));

        var grouped = ExpertRouting.Permute(rows, groups);
        AssertSameBits(rows.index_select(0, groups.Order), grouped, "permute vs index_select");
        var restored = ExpertRouting.Unpermute(grouped, groups);
        AssertSameBits(empty_like(grouped).index_copy_(0, groups.Order, grouped), restored, "unpermute vs index_copy_");
        AssertSameBits(rows, restored, "round trip");
    }

    private static long[] Longs(Tensor t)
    {
        using var cpu = t.cpu();
        return cpu.data<long>().ToArray();
    }

    // Compares raw bytes, so NaN payloads and signed zeros count too; reports the first differing byte.
    private static void AssertSameBits(Tensor expected, Tensor actual, string what)
    {
        using var a = expected.cpu();
        using var b = actual.cpu();
        var x = a.bytes.ToArray();
        var y = b.bytes.ToArray();
        Assert.Equal(x.Length, y.Length);
        var i = x.AsSpan().CommonPrefixLength(y);
        Assert.True(i == x.Length, $"{what}: byte {i} (row {i / Math.Max(1, x.Length / expected.shape[0])}) differs first");
    }
}

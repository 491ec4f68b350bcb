using MLNode.Protocol.Diffusion;
using MLNode.Tests;
using Xunit;

namespace MLNode.Protocol.Tests.Diffusion;

public class PhiloxNoiseTests
{
    // Sums: the element errors are mostly random (≈ 2e-7 each, so ≈ 2e-7·√N in the sum) with a residual bias of
    // the hardware units of ≈ 2e-9 per element. Measured against the fixture (fp64 sums): 7.4e-5 at N = 5,120 and
    // 4.3e-3 at N = 2,096,640; 1e-4 + 1e-8·N leaves 2–5× margin and still catches any misplaced element block.
    public static double SumTolerance(long count) => 1e-4 + 1e-8 * count;

    public static TheoryData<string> Cases() => [.. WanNoiseFixture.Cases.Select(c => c.Name)];

    [Theory]
    [MemberData(nameof(Cases))]
    public void Generate_MatchesTorchRandnOfAn_H100_WithinTheStatedTolerance(string name)
    {
        var recorded = WanNoiseFixture.Case(name);
        var noise = PhiloxNoise.Generate(WanNoiseFixture.Seed, checked((int)recorded.Count));
        AssertWithinReferenceError(recorded.First16, noise, 0, name);
        AssertWithinReferenceError(recorded.Last16, noise, noise.Length - 16, name);
        if (recorded.At1000000 is { } at)
            AssertWithinReferenceError([at], noise, 1_000_000, name);
        var sum = WanNoiseFixture.Sum(noise);
        Assert.True(Math.Abs(sum - recorded.Sum) <= SumTolerance(recorded.Count),
            $"{name} sum: expected {recorded.Sum:R}, got {sum:R} (difference {sum - recorded.Sum:E3} > {SumTolerance(recorded.Count):E3})");
    }

    // The device's error is absolute (the sine unit's error times r), so the bound is too.
    private static void AssertWithinReferenceError(float[] expected, float[] noise, int start, string name)
    {
        for (var i = 0; i < expected.Length; i++)
        {
            var error = Math.Abs((double)noise[start + i] - expected[i]);
            Assert.True(error <= PhiloxNoise.MaxReferenceError,
                $"{name}[{start + i}]: torch {expected[i]:R}, reference {noise[start + i]:R} (error {error:E3} > {PhiloxNoise.MaxReferenceError:E1})");
        }
    }

    [Theory]
    [InlineData(5L, 0L)]             // one block, only lane 0 of five threads
    [InlineData(5_120L, 4_321L)]     // one draw per thread
    [InlineData(2_096_640L, 1_999_999L)] // past one wave: 1056 blocks, a second, partial draw
    public void At_IsTheElementFillWrites(long count, long index)
    {
        var noise = PhiloxNoise.Generate(7, checked((int)count));
        Assert.Equal(noise[index], PhiloxNoise.At(7, count, index));
        Assert.Equal(noise[^1], PhiloxNoise.At(7, count, count - 1));
    }

    // A generator advanced by one curand4 per thread (offset 4) continues each thread's stream: with
    // T = 1056·256 threads, element j of a 4T-element draw at offset 4 is element 4T + j of an 8T-element draw.
    [Fact]
    public void Offset_ContinuesEveryThreadsStream()
    {
        const long threads = PhiloxNoise.VirtualBlocks * PhiloxNoise.ThreadsPerBlock;
        foreach (var j in new long[] { 0, 1, threads - 1, threads, 3 * threads + 17, 4 * threads - 1 })
            Assert.Equal(PhiloxNoise.At(42, 8 * threads, 4 * threads + j), PhiloxNoise.At(42, 4 * threads, j, offset: 4));
    }

    // PyTorch's increment per draw, ((N − 1)/(4·256·G) + 1)·4: one curand4 per loop iteration of the busiest thread.
    [Theory]
    [InlineData(1L, 4UL)]
    [InlineData(1_000L, 4UL)]
    [InlineData(4 * 270_336L, 4UL)]
    [InlineData(4 * 270_336L + 1, 8UL)]
    [InlineData(2_096_640L, 8UL)]
    [InlineData(4_838_400L, 20UL)]
    public void OffsetAdvance_IsPyTorchsIncrementPerDraw(long count, ulong advance) =>
        Assert.Equal(advance, PhiloxNoise.OffsetAdvance(count));

    // The second 8T-element draw of a generator continues where the first stopped: it is the second half of one 16T draw.
    [Fact]
    public void OffsetAdvance_MakesTheNextDrawContinueTheStream()
    {
        const long threads = PhiloxNoise.VirtualBlocks * PhiloxNoise.ThreadsPerBlock;
        var advance = PhiloxNoise.OffsetAdvance(8 * threads);
        foreach (var j in new long[] { 0, 5, threads + 3, 4 * threads + 1, 8 * threads - 1 })
            Assert.Equal(PhiloxNoise.At(9, 16 * threads, 8 * threads + j), PhiloxNoise.At(9, 8 * threads, j, offset: advance));
    }

    [Fact]
    public void Offset_ThatIsNotAWholeDrawIsRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => PhiloxNoise.Generate(42, 16, offset: 2));
    }

    [Theory]
    [InlineData(1L, 1)]
    [InlineData(256L, 1)]
    [InlineData(257L, 2)]
    [InlineData(270_336L, 1056)]
    [InlineData(4_838_400L, 1056)]
    public void Blocks_AreOnePer256ElementsUpToOneHopperWave(long count, int blocks) =>
        Assert.Equal(blocks, PhiloxNoise.Blocks(count));
}

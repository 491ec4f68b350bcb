using Xunit;

namespace MLNode.Protocol.Tests.Poc;

internal static class FloatAssert
{
    /// <summary>
    /// Fails unless |actual − expected| ≤ relative·max(|expected|, floor) for every element, naming the worst one.
    /// The floor turns the bound absolute near zero, where one ulp of a transcendental's argument is many
    /// ulps of a tiny result.
    /// </summary>
    public static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double relative, double floor, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: expected {expected.Length} values, got {actual.Length}");
        for (var i = 0; i < expected.Length; i++)
        {
            var bound = relative * Math.Max(Math.Abs(expected[i]), floor);
            var error = Math.Abs((double)actual[i] - expected[i]);
            Assert.True(error <= bound, $"{what}[{i}]: expected {expected[i]:R}, got {actual[i]:R} (error {error:E3} > {bound:E3})");
        }
    }

    /// <summary>Fails unless every element is within <paramref name="maxUlps"/> float32 steps of the expected one.</summary>
    public static void WithinUlps(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, int maxUlps, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: expected {expected.Length} values, got {actual.Length}");
        for (var i = 0; i < expected.Length; i++)
        {
            var distance = UlpDistance(expected[i], actual[i]);
            Assert.True(distance <= maxUlps, $"{what}[{i}]: expected {expected[i]:R}, got {actual[i]:R} ({distance} ulps > {maxUlps})");
        }
    }

    /// <summary>Number of float32 values between a and b (0 when equal, also for +0 and −0).</summary>
    public static long UlpDistance(float a, float b) => Math.Abs(Ordered(a) - Ordered(b));

    // Float bits mapped to integers that are ordered like the floats.
    private static long Ordered(float x)
    {
        var bits = BitConverter.SingleToInt32Bits(x);
        return bits < 0 ? (long)int.MinValue - bits : bits;
    }
}

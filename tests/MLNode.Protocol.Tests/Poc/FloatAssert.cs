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
}

using System.Text.Json;

namespace MLNode.Tests;

/// <summary>
/// fixtures/wan/torch_cuda_randn_seed42.json: <c>torch.randn(shape, generator=CUDA generator seeded 42)</c> on a
/// 132-SM H100 — first and last 16 values, the fp64 sum and element 1,000,000 of each shape.
/// </summary>
public static class WanNoiseFixture
{
    public const ulong Seed = 42;

    public sealed record Recorded(string Name, long[] Shape, float[] First16, float[] Last16, double Sum, float? At1000000)
    {
        public long Count => Shape.Aggregate(1L, (a, b) => a * b);
    }

    private static readonly Lazy<Recorded[]> All = new(Load);

    public static IReadOnlyList<Recorded> Cases => All.Value;

    public static Recorded Case(string name) => All.Value.Single(c => c.Name == name);

    /// <summary>The fp64 sum of float32 values, compensated (Neumaier) so that its own rounding is negligible.</summary>
    public static double Sum(ReadOnlySpan<float> values)
    {
        double sum = 0, compensation = 0;
        foreach (double x in values)
        {
            var t = sum + x;
            compensation += Math.Abs(sum) >= Math.Abs(x) ? (sum - t) + x : (x - t) + sum;
            sum = t;
        }
        return sum + compensation;
    }

    private static Recorded[] Load()
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(Fixtures.Path("wan", "torch_cuda_randn_seed42.json")));
        return
        [
            .. document.RootElement.GetProperty("cases").EnumerateObject().Select(c => new Recorded(
                c.Name,
                [.. c.Name.Trim('(', ')').Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(long.Parse)],
                Floats(c.Value.GetProperty("first16")),
                Floats(c.Value.GetProperty("last16")),
                c.Value.GetProperty("sum").GetDouble(),
                c.Value.GetProperty("at_1000000") is { ValueKind: JsonValueKind.Number } at ? (float)at.GetDouble() : null)),
        ];
    }

    // The recorded values are float32 printed as doubles: the cast back is exact.
    private static float[] Floats(JsonElement array) => [.. array.EnumerateArray().Select(e => (float)e.GetDouble())];
}

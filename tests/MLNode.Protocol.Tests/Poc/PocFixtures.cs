using System.Text.Json;

namespace MLNode.Protocol.Tests.Poc;

/// <summary>Reads the PoC fixtures of ../shared/fixtures (poc/, gonka/poc-artifacts/).</summary>
internal static class PocFixtures
{
    public static readonly string[] GoldenArtifactFiles =
    [
        "moonshotai-kimi-k2.6.json",
        "qwen-qwen3-0.6b.json",
        "qwen-qwen3-235b-a22b-instruct-2507-fp8.json",
    ];

    private static readonly Lazy<JsonDocument> LazyPrimitives = new(() => Load("poc", "primitives.json"));
    private static readonly Lazy<JsonDocument> LazyPickOrders = new(() => Load("poc", "pick_orders.json"));

    public static JsonElement Primitives => LazyPrimitives.Value.RootElement;

    public static JsonElement PickOrders => LazyPickOrders.Value.RootElement;

    public static JsonDocument Load(params string[] parts) =>
        JsonDocument.Parse(File.ReadAllBytes(MLNode.Tests.Fixtures.Path(parts)));

    public static JsonDocument GoldenArtifacts(string file) => Load("gonka", "poc-artifacts", file);

    public static float[] Floats(this JsonElement array) => [.. array.EnumerateArray().Select(e => (float)e.GetDouble())];

    public static double[] Doubles(this JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetDouble())];

    public static long[] Longs(this JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetInt64())];

    public static int[] Ints(this JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetInt32())];

    public static uint[] UInts(this JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetUInt32())];
}

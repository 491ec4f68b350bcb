using System.Text.Json;
using MLNode.Protocol.Poc;

namespace MLNode.Tests;

/// <summary>
/// One section of an <c>llm/&lt;model&gt;/poc_reference.json</c> fixture: the round, its nonces and the
/// artifacts Gonka's reference computed for them.
/// </summary>
public sealed record PocReference(PocRound Round, long[] Nonces, Dictionary<long, string> Artifacts)
{
    /// <summary>
    /// The network's tolerance, an L2 distance between unit vectors: the reference node's default
    /// dist_threshold and the fixture README's bar for every nonce, in fp32 and in bf16.
    /// </summary>
    public const double MaxL2 = 0.02;

    /// <summary>Section <paramref name="section"/> (e.g. <c>fp32</c>, <c>bf16</c>, <c>seq_len_256_fp32</c>) for a model of hidden size d.</summary>
    public static PocReference Load(string model, string section, int hiddenSize)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.Path("llm", model, "poc_reference.json")));
        var root = doc.RootElement;
        var seqLen = root.GetProperty("seq_len").GetInt32();
        var artifacts = root.GetProperty(section);
        if (artifacts.ValueKind == JsonValueKind.Object)
        {
            seqLen = artifacts.GetProperty("seq_len").GetInt32();
            artifacts = artifacts.GetProperty("artifacts");
        }
        var map = artifacts.EnumerateArray().ToDictionary(a => a.GetProperty("nonce").GetInt64(), a => a.GetProperty("vector_b64").GetString()!);
        var round = new PocRound(root.GetProperty("block_hash").GetString()!, root.GetProperty("public_key").GetString()!, seqLen, hiddenSize,
            root.GetProperty("k_dim").GetInt32(), StrongRng: section.Contains("strong"));
        return new PocReference(round, [.. map.Keys.Order()], map);
    }

    /// <summary>The distance the validators measure between two encoded artifacts.</summary>
    public static double L2(string a, string b)
    {
        var (x, y) = (ArtifactCodec.Decode(a), ArtifactCodec.Decode(b));
        return Math.Sqrt(x.Zip(y, (p, q) => (double)(p - q) * (p - q)).Sum());
    }
}

using System.Text.Json;
using MLNode.Protocol.Poc;
using Xunit;

namespace MLNode.Protocol.Tests.Poc;

public class ArtifactValidatorTests
{
    public static TheoryData<string> GoldenFiles() => [.. PocFixtures.GoldenArtifactFiles];

    [Theory]
    [MemberData(nameof(GoldenFiles))]
    public void GoldenArtifacts_ValidateAgainstThemselves(string file)
    {
        var golden = Golden.Read(file);
        var result = ArtifactValidator.Validate(golden.Nonces, golden.Artifacts, golden.Received(), golden.StatTest, golden.KDim);
        Assert.Equal(golden.Nonces.Length, result.NTotal);
        Assert.Equal(0, result.NMismatch);
        Assert.Empty(result.MismatchNonces);
        Assert.Equal(1.0, result.PValue);
        Assert.False(result.FraudDetected);
    }

    // Negated vectors lie at distance 2 (> every threshold); the p-values are the exact binomial tails of
    // BinomialTestTests (Qwen3-235B: n = 32, p_mismatch 0.1; Kimi-K2.6: n = 200, p_mismatch 0.1; α = 0.05).
    [Theory]
    [InlineData("qwen-qwen3-235b-a22b-instruct-2507-fp8.json", 5, 0.21149828869932724661, false)]
    [InlineData("qwen-qwen3-235b-a22b-instruct-2507-fp8.json", 9, 0.0032953808437041576288, true)]
    [InlineData("qwen-qwen3-235b-a22b-instruct-2507-fp8.json", 32, 1.0e-32, true)]
    [InlineData("moonshotai-kimi-k2.6.json", 27, 0.067224684073425001907, false)]
    [InlineData("moonshotai-kimi-k2.6.json", 28, 0.043428499610610781198, true)]
    public void TamperedArtifacts_AreCountedAndJudged(string file, int tampered, double pValue, bool fraud)
    {
        var golden = Golden.Read(file);
        Assert.Equal(0.05, golden.StatTest.FraudThreshold);
        var received = golden.Received();
        var victims = golden.Nonces.Where((_, i) => i % 3 == 0).Concat(golden.Nonces.Where((_, i) => i % 3 != 0)).Take(tampered).ToArray();
        foreach (var nonce in victims)
            received[nonce] = ArtifactCodec.Encode([.. ArtifactCodec.Decode(received[nonce]).Select(x => -x)]);

        var result = ArtifactValidator.Validate(golden.Nonces, golden.Artifacts, received, golden.StatTest, golden.KDim);
        Assert.Equal(tampered, result.NMismatch);
        Assert.Equal(victims.Order(), result.MismatchNonces.Order());
        Assert.Equal(pValue, result.PValue, pValue * 1e-9);
        Assert.Equal(fraud, result.FraudDetected);
    }

    [Fact]
    public void DistancesUpToTheThreshold_AreNotMismatches()
    {
        var golden = Golden.Read("qwen-qwen3-235b-a22b-instruct-2507-fp8.json");
        var received = golden.Received();
        // Shifting four components by 0.05 moves a vector by √(4·0.05²) ≈ 0.1 (< 0.2) give or take float16
        // rounding; shifting by 0.15 moves it by ≈ 0.3 (> 0.2).
        var near = golden.Nonces[0];
        var far = golden.Nonces[1];
        received[near] = Shift(received[near], 0.05f);
        received[far] = Shift(received[far], 0.15f);

        var result = ArtifactValidator.Validate(golden.Nonces, golden.Artifacts, received, golden.StatTest, golden.KDim);
        Assert.Equal([far], result.MismatchNonces);
    }

    [Fact]
    public void MalformedReceivedArtifacts_AreMismatches()
    {
        var golden = Golden.Read("qwen-qwen3-0.6b.json");
        var received = golden.Received();
        long[] broken = [golden.Nonces[0], golden.Nonces[1], golden.Nonces[2], golden.Nonces[3]];
        received[broken[0]] = ArtifactCodec.Encode(new float[11]);                            // 11 values
        received[broken[1]] = ArtifactCodec.Encode([.. new float[11], float.NaN]);             // NaN
        received[broken[2]] = ArtifactCodec.Encode([float.PositiveInfinity, .. new float[11]]); // ∞
        received[broken[3]] = "%%%";                                                           // not base64

        var result = ArtifactValidator.Validate(golden.Nonces, golden.Artifacts, received, golden.StatTest, golden.KDim);
        Assert.Equal(broken, result.MismatchNonces);
    }

    [Fact]
    public void NoncesWithoutABothSidedArtifact_CountOnlyTowardsTheTotal()
    {
        // Qwen3-0.6B: 32 nonces. Four have no recomputed artifact (e.g. NaN hidden state), four were not reported
        // and two were reported empty: n stays 32, none of these is a mismatch.
        var golden = Golden.Read("qwen-qwen3-0.6b.json");
        var computed = golden.Artifacts.Skip(4).ToArray();
        var received = golden.Received();
        foreach (var nonce in golden.Nonces[4..8])
            received.Remove(nonce);
        received[golden.Nonces[8]] = "";
        received[golden.Nonces[9]] = "";
        // One real mismatch among the rest.
        received[golden.Nonces[10]] = ArtifactCodec.Encode([.. ArtifactCodec.Decode(received[golden.Nonces[10]]).Select(x => -x)]);

        var statTest = golden.StatTest with { PMismatch = 0.1 };
        var result = ArtifactValidator.Validate(golden.Nonces, computed, received, statTest, golden.KDim);
        Assert.Equal(32, result.NTotal);
        Assert.Equal([golden.Nonces[10]], result.MismatchNonces);
        // P[X ≥ 1] for n = 32, p = 0.1 is 1 − 0.9^32.
        Assert.Equal(1 - Math.Pow(0.9, 32), result.PValue, 1e-12);
    }

    [Fact]
    public void NoNonces_MeanNoEvidence()
    {
        var result = ArtifactValidator.Validate([], [], new Dictionary<long, string>(), new PocStatTest());
        Assert.Equal(new PocValidationResult(0, 0, result.MismatchNonces, 1.0, false), result);
        Assert.Empty(result.MismatchNonces);
    }

    private static string Shift(string b64, float delta)
    {
        var vector = ArtifactCodec.Decode(b64);
        for (var i = 0; i < 4; i++)
            vector[i] += delta;
        return ArtifactCodec.Encode(vector);
    }

    private sealed record Golden(long[] Nonces, PocArtifact[] Artifacts, PocStatTest StatTest, int KDim)
    {
        public Dictionary<long, string> Received() => Artifacts.ToDictionary(a => a.Nonce, a => a.VectorB64);

        public static Golden Read(string file)
        {
            using var document = PocFixtures.GoldenArtifacts(file);
            var root = document.RootElement;
            PocArtifact[] artifacts = [.. root.GetProperty("artifacts").EnumerateArray()
                .Select(a => new PocArtifact(a.GetProperty("nonce").GetInt64(), a.GetProperty("vector_b64").GetString()!))];
            return new Golden([.. artifacts.Select(a => a.Nonce)], artifacts, StatTestOf(root), root.GetProperty("k_dim").GetInt32());
        }

        // The Qwen3-0.6B file has no stat_test: the node's defaults with the file's distance threshold.
        private static PocStatTest StatTestOf(JsonElement root)
        {
            var distThreshold = root.GetProperty("dist_threshold").GetDouble();
            if (!root.TryGetProperty("stat_test", out var statTest))
                return new PocStatTest(DistThreshold: distThreshold);
            return new PocStatTest(
                distThreshold,
                statTest.GetProperty("p_mismatch").GetDouble(),
                statTest.GetProperty("fraud_threshold").GetDouble());
        }
    }
}

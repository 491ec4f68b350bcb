using MLNode.Protocol.Poc;
using Xunit;

namespace MLNode.Protocol.Tests.Poc;

public class ArtifactCodecTests
{
    // The reference normalises to 1 ± 1e-7 before rounding to float16. Rounding moves each value by at most half
    // an ulp, 2^-11 relative (or 2^-25 absolute for float16 subnormals), so the decoded norm is within
    // 2^-11 + 12·2^-25 + 1e-7 < 5e-4 of 1.
    private const double Float16NormTolerance = 5e-4;

    public static TheoryData<string> GoldenFiles() => [.. PocFixtures.GoldenArtifactFiles];

    [Theory]
    [MemberData(nameof(GoldenFiles))]
    public void GoldenArtifacts_DecodeToUnitVectorsAndReencodeIdentically(string file)
    {
        using var golden = PocFixtures.GoldenArtifacts(file);
        var root = golden.RootElement;
        var kDim = root.GetProperty("k_dim").GetInt32();
        // The Qwen3-235B file omits the encoding block; the others state the format this codec implements.
        if (root.TryGetProperty("encoding", out var encoding))
        {
            Assert.Equal(kDim, encoding.GetProperty("k_dim").GetInt32());
            Assert.Equal("f16", encoding.GetProperty("dtype").GetString());
            Assert.Equal("le", encoding.GetProperty("endian").GetString());
        }

        var artifacts = root.GetProperty("artifacts").EnumerateArray().ToArray();
        Assert.NotEmpty(artifacts);
        foreach (var artifact in artifacts)
        {
            var b64 = artifact.GetProperty("vector_b64").GetString()!;
            var nonce = artifact.GetProperty("nonce").GetInt64();
            Assert.True(ArtifactCodec.TryDecode(b64, kDim, out var vector), $"{file} nonce {nonce} does not decode");
            Assert.Equal(1.0, Math.Sqrt(vector.Sum(x => (double)x * x)), Float16NormTolerance);
            Assert.Equal(b64, ArtifactCodec.Encode(vector));
            Assert.Equal(vector, ArtifactCodec.Decode(b64));
        }
    }

    // Spec §3.1.3: Qwen3-0.6B nonce 0, values printed to 5 decimals.
    [Fact]
    public void SpecGoldenVector()
    {
        float[] expected = [0.19653f, -0.27417f, -0.49976f, 0.06183f, 0.13611f, -0.30493f, -0.22559f, -0.27979f, 0.34863f, 0.42334f, 0.30054f, 0.02803f];
        var vector = ArtifactCodec.Decode("SjJjtP+36itbMOG0OLN6tJQ1xjbPNC0n");
        FloatAssert.Close(expected, vector, 5e-6, 1, "Qwen3-0.6B nonce 0");
        Assert.Equal(0.99996, Math.Sqrt(vector.Sum(x => (double)x * x)), 5e-6);
    }

    // llm/*/poc_reference.json hold each artifact both as the float32 vector and as the base64 the reference
    // produced from it: float16 rounding (nearest even) must give the same bytes.
    [Theory]
    [InlineData("qwen3-tiny")]
    [InlineData("qwen2-tiny")]
    [InlineData("qwen3-moe-tiny")]
    public void Encode_RoundsLikeTheReference(string model)
    {
        using var reference = PocFixtures.Load("llm", model, "poc_reference.json");
        var root = reference.RootElement;
        var lists = new[] { "fp32", "bf16", "fp32_strong_rng", "impostor_fp32" }.Select(name => root.GetProperty(name))
            .Append(root.GetProperty("seq_len_256_fp32").GetProperty("artifacts"));
        var checkedCount = 0;
        foreach (var artifact in lists.SelectMany(list => list.EnumerateArray()))
        {
            Assert.Equal(artifact.GetProperty("vector_b64").GetString(), ArtifactCodec.Encode(artifact.GetProperty("vector").Floats()));
            checkedCount++;
        }
        Assert.True(checkedCount > 100, $"only {checkedCount} artifacts in {model}");
    }

    [Fact]
    public void Encode_TwelveValuesAreThirtyTwoCharacters() =>
        Assert.Equal(32, ArtifactCodec.Encode(new float[12]).Length);

    [Theory]
    [InlineData("SjJjtP+36itbMOG0OLN6tA==")]               // 8 values
    [InlineData("SjJjtP+36itbMOG0OLN6tJQ1xjbPNC0nAAA=")] // 13 values
    [InlineData("SjJjtP+36itbMOG0OLN6tJQ1xjbPNC0nAA==")]  // 12.5 values
    [InlineData("not base64!")]
    [InlineData("")]
    [InlineData(null)]
    public void TryDecode_RejectsMalformedArtifacts(string? b64) =>
        Assert.False(ArtifactCodec.TryDecode(b64, 12, out _));

    [Theory]
    [InlineData((ushort)0x7E00)] // NaN
    [InlineData((ushort)0x7C00)] // +∞
    [InlineData((ushort)0xFC00)] // −∞
    public void TryDecode_RejectsNonFiniteValues(ushort bits)
    {
        var bytes = new byte[24];
        bytes[22] = (byte)bits;
        bytes[23] = (byte)(bits >> 8);
        var b64 = Convert.ToBase64String(bytes);
        Assert.False(ArtifactCodec.TryDecode(b64, 12, out _));
        Assert.True(float.IsNaN(ArtifactCodec.Decode(b64)[11]) || float.IsInfinity(ArtifactCodec.Decode(b64)[11]));
    }

    [Fact]
    public void Decode_RejectsAnOddByteCount() =>
        Assert.Throws<FormatException>(() => ArtifactCodec.Decode(Convert.ToBase64String(new byte[23])));
}

using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using MLNode.Protocol.Diffusion;
using Xunit;

namespace MLNode.Protocol.Tests.Diffusion;

/// <summary>
/// The record's leaf bytes, the commitment's and the reveal manifest's JSON (one byte form, read back, and refused with the
/// field named when wrong), and the beacon's choice of challenged steps.
/// </summary>
public sealed class TrajectoryCommitmentTests
{
    [Fact]
    public void A_record_encodes_its_fields_at_fixed_offsets()
    {
        var record = Record(3, seed: 1);

        var bytes = record.Encode();

        Assert.Equal(TrajectoryRecord.EncodedBytes, bytes.Length);
        Assert.Equal(1073, bytes.Length);
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(bytes));
        Assert.Equal(970u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4)));
        Assert.Equal(0, bytes[8]);
        Assert.Equal(4.0, BinaryPrimitives.ReadDoubleLittleEndian(bytes.AsSpan(9)));
        Assert.Equal(record.Hash, bytes[17..49]);
        Assert.Equal(record.LatentSketch[0], BinaryPrimitives.ReadHalfLittleEndian(bytes.AsSpan(49)));
        Assert.Equal(record.VelocitySketch[255], BinaryPrimitives.ReadHalfLittleEndian(bytes.AsSpan(1071)));
    }

    [Fact]
    public void Commitment_json_reads_back_to_the_same_bytes_and_root()
    {
        var commitment = Commitment(5);

        var json = commitment.ToJson();
        var parsed = TrajectoryCommitment.Parse(json);

        Assert.Equal(json, parsed.ToJson());
        Assert.Equal(commitment.MerkleRoot, parsed.MerkleRoot);
        var node = JsonNode.Parse(json)!;
        Assert.Equal(Convert.ToHexStringLower(commitment.MerkleRoot), node["merkle_root"]!.GetValue<string>());
        Assert.Equal(5, node["records"]!.AsArray().Count);
        Assert.Equal(TrajectoryRecord.SketchDimension * 2, Convert.FromBase64String(node["jl_x0"]!.GetValue<string>()).Length);
        // Base64 and everything else stay unescaped: the canonical form has no \u escapes.
        Assert.DoesNotContain("\\u", Encoding.UTF8.GetString(json), StringComparison.Ordinal);
    }

    [Fact]
    public void Every_records_proof_leads_to_the_commitments_root()
    {
        var commitment = Commitment(7);

        for (var k = 0; k < commitment.Steps; k++)
            Assert.True(MerkleTree.Verify(commitment.Records[k].Encode(), k, commitment.Steps, commitment.Proof(k), commitment.MerkleRoot));
        var other = Record(2, seed: 99);
        Assert.False(MerkleTree.Verify(other.Encode(), 2, commitment.Steps, commitment.Proof(2), commitment.MerkleRoot));
    }

    [Theory]
    [InlineData("merkle_root", "\"00\"", "merkle_root")]
    [InlineData("version", "\"mlnode-wan-trajectory-v0\"", "version")]
    [InlineData("steps", "4", "steps")]
    [InlineData("h_final", "\"ABCDEF\"", "h_final")]
    [InlineData("jl_x0", "\"AAAA\"", "jl_x0")]
    [InlineData("latent_shape", "[16, 0]", "latent_shape")]
    public void A_commitment_that_does_not_hold_together_is_refused_naming_the_field(string field, string value, string named)
    {
        var json = JsonNode.Parse(Commitment(5).ToJson())!;
        json[field] = JsonNode.Parse(value);

        var error = Assert.Throws<FormatException>(() => TrajectoryCommitment.Parse(Encoding.UTF8.GetBytes(json.ToJsonString())));

        Assert.StartsWith(named, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_tampered_record_no_longer_matches_the_stated_root()
    {
        var json = JsonNode.Parse(Commitment(5).ToJson())!;
        json["records"]![2]!["timestep"] = 500;

        var error = Assert.Throws<FormatException>(() => TrajectoryCommitment.Parse(Encoding.UTF8.GetBytes(json.ToJsonString())));

        Assert.StartsWith("merkle_root", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("hash", "\"xyz\"", "records[1].hash")]
    [InlineData("expert", "2", "records[1].expert")]
    [InlineData("latent_sketch", "\"AAAA\"", "records[1].latent_sketch")]
    [InlineData("step", "-1", "records[1].step")]
    public void A_bad_record_field_is_named(string field, string value, string named)
    {
        var json = JsonNode.Parse(Commitment(3).ToJson())!;
        json["records"]![1]![field] = JsonNode.Parse(value);

        var error = Assert.Throws<FormatException>(() => TrajectoryCommitment.Parse(Encoding.UTF8.GetBytes(json.ToJsonString())));

        Assert.StartsWith(named, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Reveal_manifest_carries_the_neighbourhood_of_each_challenged_step_and_reads_back()
    {
        var commitment = Commitment(10);
        var manifest = RevealManifest.For(commitment, "beacon-1", 3);

        var parsed = RevealManifest.Parse(manifest.ToJson());

        Assert.Equal(manifest.ToJson(), parsed.ToJson());
        Assert.Equal(RevealManifest.RevealedSteps(manifest.Challenged, 10), parsed.Records.Select(r => r.Record.Step));
        foreach (var revealed in parsed.Records)
            Assert.True(MerkleTree.Verify(revealed.Record.Encode(), revealed.Record.Step, 10, revealed.Proof, commitment.MerkleRoot));
    }

    [Theory]
    [InlineData(new[] { 0 }, 5, new[] { 0, 1 })]
    [InlineData(new[] { 4 }, 5, new[] { 2, 3, 4 })]
    [InlineData(new[] { 1, 7 }, 9, new[] { 0, 1, 2, 5, 6, 7, 8 })]
    [InlineData(new[] { 2, 3 }, 9, new[] { 0, 1, 2, 3, 4 })]
    public void Revealed_steps_are_k_minus_2_to_k_plus_1_within_the_run(int[] challenged, int steps, int[] revealed) =>
        Assert.Equal(revealed, RevealManifest.RevealedSteps(challenged, steps));

    [Fact]
    public void Challenges_are_deterministic_and_take_one_step_of_each_expert()
    {
        var experts = Enumerable.Range(0, 40).Select(k => k < 26 ? 0 : 1).ToArray();
        var root = Commitment(3).MerkleRoot;

        for (var b = 0; b < 200; b++)
        {
            var chosen = StepChallenges.Select($"beacon {b}", root, experts, 2);
            Assert.Equal(chosen, StepChallenges.Select($"beacon {b}", root, experts, 2));
            Assert.Single(chosen, k => k < 26);
            Assert.Single(chosen, k => k >= 26);
        }
        Assert.Equal(Enumerable.Range(0, 40), StepChallenges.Select("all", root, experts, 40));
        Assert.Single(StepChallenges.Select("one", root, experts, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => StepChallenges.Select("none", root, experts, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => StepChallenges.Select("too many", root, experts, 41));
    }

    [Fact]
    public void Challenges_spread_over_every_step_and_depend_on_beacon_and_root()
    {
        var experts = Enumerable.Range(0, 40).Select(k => k < 26 ? 0 : 1).ToArray();
        var root = Commitment(3).MerkleRoot;
        var otherRoot = Commitment(4).MerkleRoot;
        var hits = new int[40];
        var differs = 0;

        for (var b = 0; b < 2600; b++)
        {
            var chosen = StepChallenges.Select($"{b}", root, experts, 2);
            foreach (var k in chosen) hits[k]++;
            if (!chosen.SequenceEqual(StepChallenges.Select($"{b}", otherRoot, experts, 2))) differs++;
        }

        // Each high-noise step is drawn with p = 1/26 (100 expected of 2600), each low-noise one with p = 1/14 (≈ 186):
        // binomial standard deviations ≈ 10 and 13, so ±40% is over 4σ yet catches a step never or always drawn.
        for (var k = 0; k < 40; k++)
        {
            var expected = 2600.0 / (k < 26 ? 26 : 14);
            Assert.InRange(hits[k], 0.6 * expected, 1.4 * expected);
        }
        // Two independent choices agree with p ≈ 1/26 · 1/14; 2600 of them agree ≈ 7 times.
        Assert.True(differs > 2500, $"only {differs} of 2600 choices changed with the root");
    }

    private static TrajectoryCommitment Commitment(int steps) => new(
        new string('a', 64), new JlParameters("mlnode-wan-jl-v1", 12345, 256), [16, 3, 8, 8],
        [.. Enumerable.Range(0, steps).Select(k => Record(k, seed: steps))], Bytes(32, 7), Sketch(8));

    private static TrajectoryRecord Record(int step, int seed) =>
        new(step, 1000 - 10 * step, step < 4 ? 0 : 1, step < 4 ? 4.0 : 3.0, Bytes(32, seed * 100 + step), Sketch(seed * 1000 + step), Sketch(seed * 1000 + step + 500));

    private static byte[] Bytes(int count, int seed)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static Half[] Sketch(int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, 256).Select(_ => (Half)(random.NextDouble() * 200 - 100))];
    }
}

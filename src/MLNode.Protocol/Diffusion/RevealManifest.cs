using System.Buffers;
using System.Text.Json;

namespace MLNode.Protocol.Diffusion;

/// <summary>A revealed step's record with its Merkle audit path to the committed root.</summary>
public sealed record RevealedRecord(TrajectoryRecord Record, IReadOnlyList<byte[]> Proof);

/// <summary>
/// The JSON half of a step reveal: which steps a beacon challenged (<see cref="StepChallenges"/>) and the records, with
/// Merkle proofs, of every step whose tensors the reveal carries (<see cref="RevealedSteps"/>). The tensors themselves
/// travel beside it (docs/wan-verification.md).
/// </summary>
public sealed class RevealManifest
{
    public const string FormatVersion = "mlnode-wan-reveal-v1";

    public RevealManifest(string jobId, byte[] merkleRoot, int steps, string beacon, IReadOnlyList<int> challenged, IReadOnlyList<RevealedRecord> records)
    {
        ArgumentException.ThrowIfNullOrEmpty(jobId);
        ArgumentNullException.ThrowIfNull(merkleRoot);
        ArgumentNullException.ThrowIfNull(beacon);
        ArgumentNullException.ThrowIfNull(challenged);
        ArgumentNullException.ThrowIfNull(records);
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        if (merkleRoot.Length != MerkleTree.HashBytes) throw new ArgumentException($"a Merkle root is {MerkleTree.HashBytes} bytes", nameof(merkleRoot));
        if (challenged.Count == 0 || !challenged.SequenceEqual(challenged.Distinct().Order()) || challenged[0] < 0 || challenged[^1] >= steps)
            throw new ArgumentException($"the challenged steps must be distinct, ascending and in 0..{steps - 1}", nameof(challenged));
        if (!records.Select(r => r.Record.Step).SequenceEqual(RevealedSteps(challenged, steps)))
            throw new ArgumentException($"a reveal of steps {string.Join(", ", challenged)} carries the records of steps {string.Join(", ", RevealedSteps(challenged, steps))}", nameof(records));
        (JobId, MerkleRoot, Steps, Beacon, Challenged, Records) = (jobId, merkleRoot, steps, beacon, challenged, records);
    }

    public string JobId { get; }
    public byte[] MerkleRoot { get; }
    public int Steps { get; }
    public string Beacon { get; }
    public IReadOnlyList<int> Challenged { get; }

    /// <summary>One per revealed step, in step order.</summary>
    public IReadOnlyList<RevealedRecord> Records { get; }

    /// <summary>The last step's successor is the final latent x0, which the reveal then carries.</summary>
    public bool RevealsFinalLatent => Challenged[^1] == Steps - 1;

    public RevealedRecord Record(int step) =>
        Records.FirstOrDefault(r => r.Record.Step == step) ?? throw new KeyNotFoundException($"the reveal carries no record of step {step}");

    /// <summary>
    /// The steps whose latent x̃_j and velocity v_j a reveal of <paramref name="challenged"/> carries: for each challenged k,
    /// k − 2 and k − 1 (their x0 predictions are the sampler's history at k, bound by their hashes), k itself, and k + 1 (the
    /// replay's target, bound by its hash), those that exist.
    /// </summary>
    public static IReadOnlyList<int> RevealedSteps(IEnumerable<int> challenged, int steps) =>
        [.. challenged.SelectMany(k => Enumerable.Range(k - 2, 4)).Where(j => j >= 0 && j < steps).Distinct().Order()];

    /// <summary>The reveal a beacon asks of <paramref name="commitment"/>: its challenged steps, and the records and proofs to carry.</summary>
    public static RevealManifest For(TrajectoryCommitment commitment, string beacon, int count)
    {
        ArgumentNullException.ThrowIfNull(commitment);
        var challenged = StepChallenges.Select(beacon, commitment.MerkleRoot, [.. commitment.Records.Select(r => r.Expert)], count);
        var records = RevealedSteps(challenged, commitment.Steps).Select(j => new RevealedRecord(commitment.Records[j], commitment.Proof(j))).ToArray();
        return new RevealManifest(commitment.JobId, commitment.MerkleRoot, commitment.Steps, beacon, challenged, records);
    }

    public byte[] ToJson()
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, TrajectoryJson.Writer))
        {
            json.WriteStartObject();
            json.WriteString("version", FormatVersion);
            json.WriteString("job_id", JobId);
            json.WriteString("merkle_root", Convert.ToHexStringLower(MerkleRoot));
            json.WriteNumber("steps", Steps);
            json.WriteString("beacon", Beacon);
            json.WriteStartArray("challenged");
            foreach (var k in Challenged) json.WriteNumberValue(k);
            json.WriteEndArray();
            json.WriteStartArray("records");
            foreach (var revealed in Records)
            {
                json.WriteStartObject();
                revealed.Record.WriteJson(json);
                json.WriteStartArray("proof");
                foreach (var hash in revealed.Proof) json.WriteStringValue(Convert.ToHexStringLower(hash));
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Reads a manifest; throws <see cref="FormatException"/> naming the field at fault. Proofs are checked by the verifier, against its own root.</summary>
    public static RevealManifest Parse(ReadOnlySpan<byte> utf8Json)
    {
        using (var document = TrajectoryJson.Document(utf8Json, "a reveal manifest"))
        {
            var root = document.RootElement;
            TrajectoryJson.RequireVersion(root, FormatVersion);
            var steps = TrajectoryJson.Int(root, "steps", "");
            var challenged = TrajectoryJson.Array(root, "challenged", "").EnumerateArray()
                .Select(k => k.ValueKind == JsonValueKind.Number && k.TryGetInt32(out var step) && step >= 0 && step < steps
                    ? step
                    : throw TrajectoryJson.Error("", "challenged", $"must hold steps in 0..{steps - 1}"))
                .ToArray();
            if (challenged.Length == 0 || !challenged.SequenceEqual(challenged.Distinct().Order()))
                throw TrajectoryJson.Error("", "challenged", "must hold at least one step, distinct and ascending");
            var records = TrajectoryJson.Array(root, "records", "").EnumerateArray().Select((r, i) =>
            {
                var path = $"records[{i}]";
                var proof = TrajectoryJson.Array(r, "proof", path).EnumerateArray()
                    .Select((p, j) => TrajectoryJson.Hash(p.ValueKind == JsonValueKind.String ? p.GetString()! : "", path, $"proof[{j}]"))
                    .ToArray();
                return new RevealedRecord(TrajectoryRecord.ReadJson(r, path), proof);
            }).ToArray();
            var expected = RevealedSteps(challenged, steps);
            if (!records.Select(r => r.Record.Step).SequenceEqual(expected))
                throw TrajectoryJson.Error("", "records", $"must be those of steps {string.Join(", ", expected)}, in order");
            return new RevealManifest(
                TrajectoryJson.String(root, "job_id", "") is { Length: > 0 } jobId ? jobId : throw TrajectoryJson.Error("", "job_id", "must not be empty"),
                TrajectoryJson.Hash(root, "merkle_root", ""),
                steps is > 0 ? steps : throw TrajectoryJson.Error("", "steps", "must be positive"),
                TrajectoryJson.String(root, "beacon", ""),
                challenged,
                records);
        }
    }
}

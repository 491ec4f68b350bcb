using System.Buffers;
using System.Text.Json;

namespace MLNode.Protocol.Diffusion;

/// <summary>The public JL projection a commitment's sketches were made with: its name, its Philox seed and k.</summary>
public sealed record JlParameters(string Version, ulong Seed, int Dimension);

/// <summary>
/// What a video executor commits to before any challenge (dit-wan22.md §5.6 (B) 3): one <see cref="TrajectoryRecord"/>
/// per denoising step, their <see cref="MerkleTree"/> root, <see cref="FinalHash"/> h_final = SHA-256 of the final latent
/// x0's float32 bytes (the latent the VAE decodes) and its sketch JL(x0). <see cref="ToJson"/> is one byte form: the same
/// job on the same device gives the same bytes. docs/wan-verification.md describes the format.
/// </summary>
public sealed class TrajectoryCommitment
{
    public const string FormatVersion = "mlnode-wan-trajectory-v1";

    private readonly byte[][] _leaves;

    public TrajectoryCommitment(string jobId, JlParameters jl, IReadOnlyList<long> latentShape, IReadOnlyList<TrajectoryRecord> records, byte[] finalHash, Half[] finalSketch)
    {
        ArgumentException.ThrowIfNullOrEmpty(jobId);
        ArgumentNullException.ThrowIfNull(jl);
        ArgumentNullException.ThrowIfNull(latentShape);
        ArgumentNullException.ThrowIfNull(records);
        ArgumentNullException.ThrowIfNull(finalHash);
        if (records.Count == 0) throw new ArgumentException("a trajectory has at least one step", nameof(records));
        for (var k = 0; k < records.Count; k++)
            if (records[k].Step != k) throw new ArgumentException($"record {k} is for step {records[k].Step}; records run 0, 1, …, S−1", nameof(records));
        if (finalHash.Length != MerkleTree.HashBytes) throw new ArgumentException($"h_final is a SHA-256 of {MerkleTree.HashBytes} bytes, got {finalHash.Length}", nameof(finalHash));
        if (latentShape.Count == 0 || latentShape.Any(d => d <= 0)) throw new ArgumentException("the latent shape needs positive dimensions", nameof(latentShape));
        (JobId, Jl, LatentShape, Records, FinalHash) = (jobId, jl, latentShape, records, finalHash);
        FinalSketch = TrajectoryRecord.CheckSketch(finalSketch, nameof(finalSketch));
        _leaves = [.. records.Select(r => r.Encode())];
        MerkleRoot = MerkleTree.Root(_leaves);
    }

    /// <summary>The job's id: SHA-256 of its canonical spec.</summary>
    public string JobId { get; }

    public JlParameters Jl { get; }

    /// <summary>The latent's shape [C, T, h, w]; JL's matrix has as many columns as it has elements.</summary>
    public IReadOnlyList<long> LatentShape { get; }

    public IReadOnlyList<TrajectoryRecord> Records { get; }
    public int Steps => Records.Count;
    public byte[] MerkleRoot { get; }
    public byte[] FinalHash { get; }
    public Half[] FinalSketch { get; }

    /// <summary>The Merkle audit path of <paramref name="step"/>'s record.</summary>
    public IReadOnlyList<byte[]> Proof(int step) => MerkleTree.Proof(_leaves, step);

    public byte[] ToJson()
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, TrajectoryJson.Writer))
        {
            json.WriteStartObject();
            json.WriteString("version", FormatVersion);
            json.WriteString("job_id", JobId);
            json.WriteStartObject("jl");
            json.WriteString("version", Jl.Version);
            json.WriteNumber("seed", Jl.Seed);
            json.WriteNumber("dim", Jl.Dimension);
            json.WriteEndObject();
            json.WriteStartArray("latent_shape");
            foreach (var dimension in LatentShape) json.WriteNumberValue(dimension);
            json.WriteEndArray();
            json.WriteNumber("steps", Steps);
            json.WriteStartArray("records");
            foreach (var record in Records)
            {
                json.WriteStartObject();
                record.WriteJson(json);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteString("merkle_root", Convert.ToHexStringLower(MerkleRoot));
            json.WriteString("h_final", Convert.ToHexStringLower(FinalHash));
            json.WriteBase64String("jl_x0", TrajectoryRecord.SketchBytes(FinalSketch));
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Reads a commitment (field order free) and checks it holds together: its version, one record per step in order, and a
    /// <c>merkle_root</c> that is the records' root. Throws <see cref="FormatException"/> naming the field at fault.
    /// </summary>
    public static TrajectoryCommitment Parse(ReadOnlySpan<byte> utf8Json)
    {
        using (var document = TrajectoryJson.Document(utf8Json, "a trajectory commitment"))
        {
            var root = document.RootElement;
            TrajectoryJson.RequireVersion(root, FormatVersion);
            var jl = TrajectoryJson.Field(root, "jl", "");
            var shape = TrajectoryJson.Array(root, "latent_shape", "").EnumerateArray()
                .Select(d => d.ValueKind == JsonValueKind.Number && d.TryGetInt64(out var n) && n > 0 ? n : throw TrajectoryJson.Error("", "latent_shape", "must hold positive integers"))
                .ToArray();
            if (shape.Length == 0) throw TrajectoryJson.Error("", "latent_shape", "must not be empty");
            var records = TrajectoryJson.Array(root, "records", "").EnumerateArray().Select((r, i) => TrajectoryRecord.ReadJson(r, $"records[{i}]")).ToArray();
            var steps = TrajectoryJson.Int(root, "steps", "");
            if (records.Length == 0 || steps != records.Length) throw TrajectoryJson.Error("", "steps", $"says {steps} steps, the records hold {records.Length} (at least 1)");
            for (var k = 0; k < records.Length; k++)
                if (records[k].Step != k) throw TrajectoryJson.Error($"records[{k}]", "step", $"is {records[k].Step}; records run 0, 1, …, S−1");
            var commitment = new TrajectoryCommitment(
                TrajectoryJson.String(root, "job_id", "") is { Length: > 0 } jobId ? jobId : throw TrajectoryJson.Error("", "job_id", "must not be empty"),
                new JlParameters(TrajectoryJson.String(jl, "version", "jl"), TrajectoryJson.UInt64(jl, "seed", "jl"), TrajectoryJson.Int(jl, "dim", "jl")),
                shape,
                records,
                TrajectoryJson.Hash(root, "h_final", ""),
                TrajectoryJson.Sketch(root, "jl_x0", ""));
            var stated = TrajectoryJson.Hash(root, "merkle_root", "");
            if (!stated.AsSpan().SequenceEqual(commitment.MerkleRoot))
                throw TrajectoryJson.Error("", "merkle_root", $"{Convert.ToHexStringLower(stated)} is not the records' root {Convert.ToHexStringLower(commitment.MerkleRoot)}");
            return commitment;
        }
    }
}

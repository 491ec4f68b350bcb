using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace MLNode.Engines.Dit.Validation;

/// <summary>What a completed job's video object says of its trajectory commitment: the Merkle root and h_final (lowercase hex).</summary>
public sealed record ManifestTrajectory(string MerkleRoot, string HFinal);

/// <summary>
/// What an executor claims about a finished job, as its worker's <c>GET /v1/videos/{id}</c> answers once completed:
/// the job spec (<c>job_spec</c>), the job id it says the spec hashes to (<c>job_id</c>), and the video's hashes
/// (<c>hashes</c>: <c>frames_sha256</c>, <c>mp4_sha256</c> when it served an MP4, per-frame <c>phash</c>), and when
/// present the short form of its trajectory commitment (<c>trajectory</c>: <c>merkle_root</c>, <c>h_final</c>). Other
/// fields of the video object are ignored.
/// </summary>
public sealed partial record VideoManifest(WanJobSpec Spec, string JobId, string FramesSha256, string? Mp4Sha256, IReadOnlyList<ulong> PHashes,
    ManifestTrajectory? Trajectory = null)
{
    /// <summary>Reads a manifest; a missing or malformed field raises a <see cref="ValidationInputException"/> naming it under <paramref name="root"/>.</summary>
    public static VideoManifest Parse(JsonElement json, string root = "manifest")
    {
        if (json.ValueKind != JsonValueKind.Object) throw new ValidationInputException(root, "must be a JSON object (the video object of GET /v1/videos/{id})");
        var specJson = Required(json, "job_spec", root);
        WanJobSpec spec;
        try
        {
            spec = WanJobSpec.Parse(specJson);
        }
        catch (WanJobException e)
        {
            throw new ValidationInputException(e.Field.Length == 0 ? $"{root}.job_spec" : $"{root}.job_spec.{e.Field}", e.Message);
        }
        foreach (var (field, value) in new[] { ("width", spec.Width), ("height", spec.Height), ("num_frames", spec.NumFrames), ("fps", spec.Fps) })
            if (value <= 0) throw new ValidationInputException($"{root}.job_spec.{field}", $"must be positive, got {value}");
        if ((long)spec.Width * spec.Height * WanVideo.Channels * spec.NumFrames > Array.MaxLength)
            throw new ValidationInputException($"{root}.job_spec", $"a {spec.Width}×{spec.Height} video of {spec.NumFrames} frames is larger than a validator holds in memory");

        var jobId = Sha256(json, "job_id", root);
        var hashes = Required(json, "hashes", root);
        if (hashes.ValueKind != JsonValueKind.Object)
            throw new ValidationInputException($"{root}.hashes", "must be an object with frames_sha256, mp4_sha256 and phash: the hashes of a completed job");
        var framesSha256 = Sha256(hashes, "frames_sha256", $"{root}.hashes");
        var mp4Sha256 = hashes.TryGetProperty("mp4_sha256", out var mp4) && mp4.ValueKind != JsonValueKind.Null ? Sha256(hashes, "mp4_sha256", $"{root}.hashes") : null;
        var phash = Required(hashes, "phash", $"{root}.hashes");
        if (phash.ValueKind != JsonValueKind.Array) throw new ValidationInputException($"{root}.hashes.phash", "must be an array of 16-digit hex strings, one per frame");
        var pHashes = phash.EnumerateArray().Select((h, i) => h.ValueKind == JsonValueKind.String && HexHash64().IsMatch(h.GetString()!)
            ? ulong.Parse(h.GetString()!, NumberStyles.HexNumber, CultureInfo.InvariantCulture)
            : throw new ValidationInputException($"{root}.hashes.phash.{i}", "must be a 64-bit pHash as 16 lowercase hex digits")).ToArray();
        ManifestTrajectory? trajectory = null;
        if (json.TryGetProperty("trajectory", out var t) && t.ValueKind != JsonValueKind.Null)
        {
            if (t.ValueKind != JsonValueKind.Object) throw new ValidationInputException($"{root}.trajectory", "must be an object with merkle_root and h_final");
            trajectory = new ManifestTrajectory(Sha256(t, "merkle_root", $"{root}.trajectory"), Sha256(t, "h_final", $"{root}.trajectory"));
        }
        return new VideoManifest(spec, jobId, framesSha256, mp4Sha256, pHashes, trajectory);
    }

    private static JsonElement Required(JsonElement json, string name, string root) =>
        json.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null
            ? value
            : throw new ValidationInputException($"{root}.{name}", "Field required");

    private static string Sha256(JsonElement json, string name, string root)
    {
        var value = Required(json, name, root);
        return value.ValueKind == JsonValueKind.String && HexSha256().IsMatch(value.GetString()!)
            ? value.GetString()!
            : throw new ValidationInputException($"{root}.{name}", "must be a SHA-256 as 64 lowercase hex digits");
    }

    [GeneratedRegex("^[0-9a-f]{64}$")]
    internal static partial Regex HexSha256();

    [GeneratedRegex("^[0-9a-f]{16}$")]
    private static partial Regex HexHash64();
}

using System.Security.Cryptography;
using System.Text.Json;
using MLNode.Engines.Dit.Output;
using MLNode.Engines.Dit.Trajectory;
using MLNode.Protocol.Diffusion;

namespace MLNode.Engines.Dit.Validation;

/// <summary>Why a node cannot replay a job: the spec field it would run differently (another model or weights, a limit).</summary>
public sealed record ReplayConflict(string Field, string Message);

/// <summary>
/// The validator's side of Wan2.2 video verification (spec §5.6 (C)), each mode adding its checks to a
/// <see cref="ValidationVerdict"/>:
/// <list type="bullet">
/// <item>V0, <see cref="CheckDelivery"/> (every job, CPU, milliseconds): the spec hashes to the job id; the delivered
/// video has the spec's size, frame count and frame rate; its file or frames hash to the manifest's; its frames' pHashes
/// are within τ_ph of the manifest's for 99% of frames.</item>
/// <item>V1's decode check, <see cref="CheckDecodeAsync"/>: the revealed final latent hashes to the committed h_final,
/// and the VAE's decode of it (or of a prefix of its latent frames) matches the delivered frames: mean PSNR ≥ τ_dec,
/// every frame's SSIM ≥ τ_ssim and pHash within τ_ph.</item>
/// <item>V1's step challenges, <see cref="CheckStepsAsync"/>: the steps a beacon selects, replayed from the executor's
/// reveal against its trajectory commitment (e_v ≤ τ_v, e_x ≤ τ_x, proofs, hashes).</item>
/// <item>V2, <see cref="CheckRegenerationAsync"/>: the whole job run again from its spec on this node, compared the same
/// way with end-to-end thresholds; frames equal to the executor's byte for byte are reported as bit-exact.</item>
/// </list>
/// V1 and V2 assume V0 passed (the delivered frames are the spec's size and count) and that this node can replay the
/// spec (<see cref="FindReplayConflict"/>).
/// </summary>
public sealed class WanVideoValidator(VideoValidationOptions options)
{
    // The planner names a few fields as a request does; a manifest names them as the spec does.
    private static readonly Dictionary<string, string> SpecFields = new(StringComparer.Ordinal)
    {
        ["guidance_scale"] = "guidance_scale_high_noise",
        ["guidance_scale_2"] = "guidance_scale_low_noise",
        ["size"] = "width",
    };

    public VideoValidationOptions Options { get; } = options ?? throw new ArgumentNullException(nameof(options));

    /// <summary>V0; true when every check passed.</summary>
    public bool CheckDelivery(VideoManifest manifest, DeliveredVideo video, ValidationVerdict verdict)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(video);
        ArgumentNullException.ThrowIfNull(verdict);
        var spec = manifest.Spec;
        var pass = verdict.Add(ValidationCheck.Equal("job_id", spec.JobId, manifest.JobId, "SHA-256 of the job spec's canonical JSON against the manifest's job_id"));
        pass &= verdict.Add(ValidationCheck.Equal("width", video.Width, spec.Width, "the delivered video's width against the spec's"));
        pass &= verdict.Add(ValidationCheck.Equal("height", video.Height, spec.Height, "the delivered video's height against the spec's"));
        pass &= verdict.Add(ValidationCheck.Equal("num_frames", video.FrameCount, spec.NumFrames, "frames in the delivered video against the spec's num_frames"));
        var frames = video.Frames;
        if (video.Format == VideoFormat.Mp4)
        {
            pass &= verdict.Add(ValidationCheck.Equal("fps", video.Fps ?? 0, spec.Fps, "the MP4's frame rate against the spec's fps"));
            pass &= verdict.Add(ValidationCheck.Equal("mp4_sha256", video.FileSha256, manifest.Mp4Sha256 ?? "",
                manifest.Mp4Sha256 is null ? "the manifest names no MP4: the executor served none" : "SHA-256 of the delivered MP4 against the manifest's"));
        }
        else
        {
            var sha256 = frames is null ? "" : Convert.ToHexStringLower(SHA256.HashData(frames.Frames));
            pass &= verdict.Add(ValidationCheck.Equal("frames_sha256", sha256, manifest.FramesSha256,
                frames is null ? "the frames were not read: their size or count is not the spec's" : "SHA-256 of the delivered lossless frames against the manifest's"));
        }

        var (within, worst) = (0, 0);
        for (var f = 0; frames is not null && f < Math.Min(frames.FrameCount, manifest.PHashes.Count); f++)
        {
            var bits = VideoComparison.Distance(VideoComparison.PHash(frames.Frames.AsSpan(f * frames.FrameBytes, frames.FrameBytes), frames.Height, frames.Width), manifest.PHashes[f]);
            worst = Math.Max(worst, bits);
            if (bits <= Options.PHashMaxBits) within++;
        }
        pass &= verdict.Add(ValidationCheck.AtLeast("phash_frames_within", (double)within / spec.NumFrames, Options.PHashMinFrameFraction,
            $"share of the spec's {spec.NumFrames} frames whose pHash is within {Options.PHashMaxBits} bits of the manifest's ({manifest.PHashes.Count} listed; worst frame {worst} bits)"));
        return pass;
    }

    /// <summary>
    /// V1's decode check on the revealed final latent <paramref name="x0"/> against the h_final of the executor's
    /// <paramref name="commitment"/>; true when every check passed. A latent that is not the committed one, or not of the
    /// spec's shape, is not decoded.
    /// </summary>
    public async Task<bool> CheckDecodeAsync(VideoManifest manifest, DeliveredVideo video, FinalLatent x0, TrajectoryCommitment commitment, IVideoExecutor executor,
        ValidationVerdict verdict, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(x0);
        ArgumentNullException.ThrowIfNull(commitment);
        ArgumentNullException.ThrowIfNull(executor);
        var delivered = DeliveredFrames(manifest, video);
        var spec = manifest.Spec;
        var pass = verdict.Add(ValidationCheck.Equal("final_latent_sha256", x0.Sha256, Convert.ToHexStringLower(commitment.FinalHash),
            "SHA-256 of the revealed x0's float32 bytes against the committed h_final"));
        var shape = executor.Planner.Model.LatentShape(spec.NumFrames, spec.Height, spec.Width);
        pass &= verdict.Add(ValidationCheck.Equal("final_latent_shape", string.Join('x', x0.Shape), string.Join('x', shape), "x0's [C, T, h, w] against the spec's latent"));
        if (!pass) return false;

        var latentFrames = Options.DecodeLatentFrames is > 0 and var n && n < shape[1] ? n : shape[1];
        using var prefix = x0.Values.narrow(1, 0, latentFrames);
        var decoded = await verdict.TimeAsync("vae_decode_ms", () => executor.DecodeAsync(prefix, ct));
        var comparison = verdict.Time("compare_ms", () => VideoComparison.Of(decoded, delivered, decoded.FrameCount, ct));
        verdict.BitExact = latentFrames == shape[1] ? Sha256(decoded) == manifest.FramesSha256
            : video.Format != VideoFormat.Mp4 ? comparison.Identical : null;
        return AddComparison(verdict, "decode", comparison, Options.DecodeMinMeanPsnrDb, Options.DecodeMinSsim, Options.DecodePHashMaxBits);
    }

    /// <summary>
    /// V1's step challenges: <paramref name="reveal"/>, the executor's answer to (<paramref name="beacon"/>,
    /// <paramref name="count"/>), replayed on this node's model against <paramref name="commitment"/>; true when every
    /// check passed. The commitment must be the one the manifest named when the job completed (when it names one), agree
    /// with the spec, and the reveal must answer the steps the beacon selects; every challenged step's proofs and hashes
    /// must hold, its e_v and e_x stay within τ_v and τ_x, the sampler's arithmetic on the executor's own tensors and the
    /// committed sketches agree with the revealed tensors, and a revealed x̃_0 must be the seed's noise.
    /// </summary>
    public async Task<bool> CheckStepsAsync(VideoManifest manifest, TrajectoryCommitment commitment, RevealBundle reveal, string beacon, int count,
        IVideoExecutor executor, ValidationVerdict verdict, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(commitment);
        ArgumentNullException.ThrowIfNull(executor);
        ArgumentNullException.ThrowIfNull(verdict);
        var pass = true;
        if (manifest.Trajectory is { } named)
        {
            pass &= verdict.Add(ValidationCheck.Equal("commitment_merkle_root", Convert.ToHexStringLower(commitment.MerkleRoot), named.MerkleRoot,
                "the commitment's Merkle root against the one the job's video object named when it completed"));
            pass &= verdict.Add(ValidationCheck.Equal("commitment_h_final", Convert.ToHexStringLower(commitment.FinalHash), named.HFinal,
                "the commitment's h_final against the one the job's video object named"));
        }
        var verification = await verdict.TimeAsync("step_replay_ms", () => executor.VerifyRevealAsync(manifest.Spec, commitment, reveal, beacon, count, ct));
        return CheckReveal(verification, count, verdict) && pass;
    }

    /// <summary>
    /// The checks of a replayed reveal (<see cref="CheckStepsAsync"/> without the manifest's): its problems, the beacon's
    /// selection of <paramref name="count"/> steps, x̃_0 against the seed's noise when revealed, and each challenged
    /// step's proofs, hashes, e_v, e_x, replay and sketches against this validator's thresholds; true when all passed.
    /// </summary>
    public bool CheckReveal(RevealVerification verification, int count, ValidationVerdict verdict)
    {
        ArgumentNullException.ThrowIfNull(verification);
        ArgumentNullException.ThrowIfNull(verdict);
        var pass = verdict.Add(ValidationCheck.AtMost("trajectory_consistent", verification.Problems.Count, 0, verification.Problems.Count == 0
            ? "the commitment and the reveal agree with the job: its id, JL, latent shape, steps, each step's timestep, expert and guidance; the reveal's root and beacon"
            : string.Join("; ", verification.Problems)));
        pass &= verdict.Add(ValidationCheck.Equal("challenges_match_beacon", string.Join(',', verification.Challenged), string.Join(',', verification.Selected),
            $"the steps the reveal answers against the {count} the beacon selects from the commitment"));
        if (verification.InitialNoiseError is { } noise)
            pass &= verdict.Add(ValidationCheck.AtMost("initial_noise", noise, Options.NoiseMaxError, "‖x̃_0 − noise(seed)‖ / ‖noise(seed)‖ of the revealed x̃_0"));
        foreach (var step in verification.Steps)
        {
            var k = step.Step;
            var at = $"step {k} (t = {step.Timestep}, expert {step.Expert}, guidance {step.Guidance})";
            pass &= verdict.Add(ValidationCheck.Holds($"step_{k}_proofs", step.ProofsVerify, $"{at}: the revealed records' Merkle proofs reach the committed root"));
            pass &= verdict.Add(ValidationCheck.Holds($"step_{k}_hashes", step.HashesMatch, $"{at}: SHA-256(x̃_j ‖ m_j) of every revealed step j against its record (and x0 against h_final after the last step)"));
            pass &= verdict.Add(ValidationCheck.AtMost($"step_{k}_e_v", step.VelocityError, Options.StepMaxVelocityError, $"{at}: ‖JL(v_val) − u_k‖ / ‖JL(v_val)‖, this node's velocity against the committed sketch"));
            pass &= verdict.Add(ValidationCheck.AtMost($"step_{k}_e_x", step.StepError, Options.StepMaxError, $"{at}: ‖x̃_(k+1)^val − x̃_(k+1)‖ / ‖x̃_(k+1)‖, the step replayed with this node's velocity"));
            pass &= verdict.Add(ValidationCheck.AtMost($"step_{k}_replay", Math.Max(step.ReplayError, step.LastSampleError), Options.StepMaxReplayError,
                $"{at}: the sampler's arithmetic on the executor's own tensors: the step from its velocity {step.ReplayError:E2}, the previous predictor from its last sample {step.LastSampleError:E2}"));
            pass &= verdict.Add(ValidationCheck.AtMost($"step_{k}_sketches", Math.Max(step.LatentSketchError, step.VelocitySketchError), Options.SketchMaxError,
                $"{at}: the committed sketches against the revealed tensors': s_k {step.LatentSketchError:E2}, u_k {step.VelocitySketchError:E2}"));
        }
        return pass;
    }

    /// <summary>V2: the job regenerated from its spec and compared with the delivered frames; true when every check passed.</summary>
    public async Task<bool> CheckRegenerationAsync(VideoManifest manifest, DeliveredVideo video, IVideoExecutor executor, ValidationVerdict verdict, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(executor);
        var delivered = DeliveredFrames(manifest, video);
        var regenerated = await verdict.TimeAsync("regenerate_ms", () => executor.GenerateAsync(manifest.Spec, null, null, ct));
        var comparison = verdict.Time("compare_ms", () => VideoComparison.Of(regenerated.Video, delivered, manifest.Spec.NumFrames, ct));
        verdict.BitExact = Sha256(regenerated.Video) == manifest.FramesSha256;
        return AddComparison(verdict, "regeneration", comparison, Options.RegenerationMinMeanPsnrDb, Options.RegenerationMinSsim, Options.RegenerationPHashMaxBits);
    }

    /// <summary>
    /// Why <paramref name="planner"/>'s node cannot replay <paramref name="spec"/>, or null when it can: the spec must be
    /// what this node's planner makes of the same request (same model, revision, weights and precision; canonical
    /// prompts; within this worker's limits), or a replay would run another job.
    /// </summary>
    public static ReplayConflict? FindReplayConflict(WanJobPlanner planner, WanJobSpec spec)
    {
        ArgumentNullException.ThrowIfNull(planner);
        ArgumentNullException.ThrowIfNull(spec);
        WanJobSpec planned;
        try
        {
            planned = planner.Plan(spec.ToRequest());
        }
        catch (WanJobException e)
        {
            return new ReplayConflict(SpecFields.GetValueOrDefault(e.Field, e.Field), $"this node cannot run the job: {e.Message}");
        }
        if (planned.JobId == spec.JobId) return null;
        using var ours = JsonDocument.Parse(planned.CanonicalJson());
        using var theirs = JsonDocument.Parse(spec.CanonicalJson());
        var field = ours.RootElement.EnumerateObject().Zip(theirs.RootElement.EnumerateObject())
            .First(p => p.First.Value.GetRawText() != p.Second.Value.GetRawText()).First.Name;
        return new ReplayConflict(field, $"the job's {field} is not what this node runs ({planner.Model.Model} at revision {planner.Model.Revision}, " +
            $"precision {planner.Model.Precision}; prompts canonical), so it cannot replay the job");
    }

    private static WanVideo DeliveredFrames(VideoManifest manifest, DeliveredVideo video)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(video);
        return video.Frames is { } frames && frames.FrameCount == manifest.Spec.NumFrames
            ? frames
            : throw new InvalidOperationException("the delivered video must pass V0 (the spec's size and frame count) before its frames are compared");
    }

    private static bool AddComparison(ValidationVerdict verdict, string stage, VideoComparison comparison, double minMeanPsnrDb, double minSsim, int maxPHashBits)
    {
        var frames = comparison.Frames;
        var pass = verdict.Add(ValidationCheck.AtLeast($"{stage}_mean_psnr_db", comparison.MeanPsnrDb, minMeanPsnrDb,
            $"mean PSNR over {frames} frames (identical frames count {Psnr.CapDb} dB); worst frame {comparison.PsnrDb.Min():F2} dB"));
        pass &= verdict.Add(ValidationCheck.AtLeast($"{stage}_min_ssim", comparison.MinSsim, minSsim, $"lowest SSIM of {frames} frames"));
        pass &= verdict.Add(ValidationCheck.AtMost($"{stage}_max_phash_bits", comparison.MaxPHashBits, maxPHashBits, $"largest pHash Hamming distance of {frames} frames"));
        return pass;
    }

    private static string Sha256(WanVideo video) => Convert.ToHexStringLower(SHA256.HashData(video.Frames));
}

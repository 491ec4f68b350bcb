using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;
using MLNode.Engines.Dit;
using MLNode.Engines.Dit.Output;
using MLNode.Engines.Dit.Trajectory;
using MLNode.Engines.Dit.Validation;
using MLNode.Protocol.Diffusion;
using MLNode.Runtime.Checkpoints;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Dit;

/// <summary>
/// The validation modes on wan-tiny's reference job (<see cref="WanTinyJob"/>, generated once on the CPU): V0 accepts
/// the honest MP4 and lossless deliveries and rejects tampered frames, a wrong frame rate, extra frames and a spec that
/// is not the one hashed; V1's decode check accepts the revealed latent (bit-exact on the same CPU, also from a prefix
/// of latent frames) and rejects a perturbed or uncommitted one; V1's step checks accept an honest reveal with zero
/// errors and reject a tampered one, one for other steps than the beacon's, and a consistent run of another seed;
/// V2 regenerates the job bit-exactly and rejects a video that is not the spec's.
/// </summary>
public sealed class VideoValidationTests : IDisposable
{
    private static readonly WanTinyJob Job = WanTinyJob.Reference;

    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("mlnode-validation-test-");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(VideoFormat.Mp4)]
    [InlineData(VideoFormat.Frames)]
    [InlineData(VideoFormat.Png)]
    public async Task Honest_delivery_passes_v0(VideoFormat format)
    {
        var verdict = await V0(Manifest(), Delivery(format), format);

        Log(verdict);
        Assert.True(verdict.Accept);
        var names = verdict.Checks.Select(c => c.Name).ToArray();
        Assert.Equal(format == VideoFormat.Mp4
            ? ["job_id", "width", "height", "num_frames", "fps", "mp4_sha256", "phash_frames_within"]
            : ["job_id", "width", "height", "num_frames", "frames_sha256", "phash_frames_within"], names);
    }

    [Fact]
    public async Task Tampered_frames_fail_v0()
    {
        // Frame 4 replaced by its negative, as a cheater splicing in other content would: its pHash moves ~60 bits.
        var frames = (byte[])Job.Video.Frames.Clone();
        var frame = frames.AsSpan(4 * Job.Video.FrameBytes, Job.Video.FrameBytes);
        for (var i = 0; i < frame.Length; i++) frame[i] = (byte)(255 - frame[i]);
        var tampered = Job.Video with { Frames = frames };
        var mp4 = await new VideoEncoder("ffmpeg").Mp4Async(tampered, Job.Spec.Fps, Ct);
        // One value of one frame one level off: only the hash of lossless frames can see it.
        var nudged = (byte[])Job.Video.Frames.Clone();
        nudged[1000]++;

        var overMp4 = await V0(Manifest(), mp4, VideoFormat.Mp4);
        var overFrames = await V0(Manifest(), nudged, VideoFormat.Frames);

        Assert.Equal(["mp4_sha256", "phash_frames_within"], Failed(overMp4));
        Assert.Equal(8.0 / 9, Check(overMp4, "phash_frames_within").Value);
        Assert.Equal(["frames_sha256"], Failed(overFrames));
    }

    [Fact]
    public async Task Wrong_frame_rate_fails_v0()
    {
        var mp4 = await new VideoEncoder("ffmpeg").Mp4Async(Job.Video, 24, Ct);

        var verdict = await V0(Manifest(), mp4, VideoFormat.Mp4);

        Assert.Equal(["fps", "mp4_sha256"], Failed(verdict));
        Assert.Equal(24.0, Check(verdict, "fps").Value);
    }

    [Fact]
    public async Task Missing_or_extra_frames_fail_v0()
    {
        var extra = Job.Video with { Frames = [.. Job.Video.Frames, .. Job.Video.Frames.AsSpan(0, Job.Video.FrameBytes)], FrameCount = 10 };
        var mp4 = await new VideoEncoder("ffmpeg").Mp4Async(extra, Job.Spec.Fps, Ct);

        var tooMany = await V0(Manifest(), mp4, VideoFormat.Mp4);
        var tooFew = await V0(Manifest(), Job.Video.Frames.AsSpan(0, 5 * Job.Video.FrameBytes).ToArray(), VideoFormat.Frames);

        Assert.Equal(["num_frames", "mp4_sha256", "phash_frames_within"], Failed(tooMany));
        Assert.Equal(10L, Check(tooMany, "num_frames").Value);
        Assert.Equal(["num_frames", "frames_sha256", "phash_frames_within"], Failed(tooFew));
        Assert.Equal(5.0 / 9, Check(tooFew, "phash_frames_within").Value);
    }

    [Fact]
    public async Task A_spec_that_is_not_the_hashed_one_fails_v0()
    {
        var manifest = Manifest();
        manifest["job_spec"]!["seed"] = 43;

        var verdict = await V0(manifest, Job.Mp4, VideoFormat.Mp4);

        Assert.Equal(["job_id"], Failed(verdict));
    }

    [Theory]
    [InlineData("job_spec", null, "manifest.job_spec")]
    [InlineData("job_spec", "[]", "manifest.job_spec")]
    [InlineData("job_id", "\"abc\"", "manifest.job_id")]
    [InlineData("hashes", null, "manifest.hashes")]
    [InlineData("hashes", "{\"frames_sha256\": 1}", "manifest.hashes.frames_sha256")]
    public void A_malformed_manifest_is_refused_naming_the_field(string field, string? json, string named)
    {
        var manifest = Manifest();
        manifest[field] = json is null ? null : JsonNode.Parse(json);

        Assert.Equal(named, Assert.Throws<ValidationInputException>(() => Parse(manifest)).Field);
    }

    [Fact]
    public void A_manifest_with_a_bad_phash_or_spec_field_names_it()
    {
        var badHash = Manifest();
        badHash["hashes"]!["phash"]![3] = "xyz";
        var badWidth = Manifest();
        badWidth["job_spec"]!["width"] = "64";
        var zeroFps = Manifest();
        zeroFps["job_spec"]!["fps"] = 0;

        Assert.Equal("manifest.hashes.phash.3", Assert.Throws<ValidationInputException>(() => Parse(badHash)).Field);
        Assert.Equal("manifest.job_spec.width", Assert.Throws<ValidationInputException>(() => Parse(badWidth)).Field);
        Assert.Equal("manifest.job_spec.fps", Assert.Throws<ValidationInputException>(() => Parse(zeroFps)).Field);
    }

    [Theory]
    [InlineData(VideoFormat.Frames, "whole 64×64 RGB frames")]
    [InlineData(VideoFormat.Mp4, "not an MP4")]
    [InlineData(VideoFormat.Png, "not a zip")]
    public async Task A_file_that_is_not_its_format_is_refused_as_video(VideoFormat format, string message)
    {
        var garbage = Enumerable.Range(0, 1001).Select(i => (byte)(i * 7)).ToArray();

        var error = await Assert.ThrowsAsync<ValidationInputException>(() => V0(Manifest(), garbage, format));

        Assert.Equal("video", error.Field);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_png_zip_missing_a_frame_is_refused_as_video()
    {
        using var zip = new MemoryStream();
        using (var archive = new ZipArchive(zip, ZipArchiveMode.Create, leaveOpen: true))
        using (var entry = archive.CreateEntry(PngArchive.EntryName(1)).Open())
            entry.Write(PngArchive.Png(Job.Video.Frames.AsSpan(0, Job.Video.FrameBytes), 64, 64));

        var error = await Assert.ThrowsAsync<ValidationInputException>(() => V0(Manifest(), zip.ToArray(), VideoFormat.Png));

        Assert.Equal(("video", true), (error.Field, error.Message.Contains(PngArchive.EntryName(0), StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Revealed_latent_passes_the_decode_check_bit_exactly()
    {
        using var x0 = await Reveal(Job.FinalLatent);

        var verdict = await V1(x0, Job.Trajectory);

        Log(verdict);
        Assert.True(verdict.Accept);
        Assert.True(verdict.BitExact);
        Assert.Equal(x0.Sha256, Convert.ToHexStringLower(Job.Trajectory.FinalHash));
        Assert.Equal(["final_latent_sha256", "final_latent_shape", "decode_mean_psnr_db", "decode_min_ssim", "decode_max_phash_bits"],
            verdict.Checks.Skip(6).Select(c => c.Name));
        Assert.Equal(Psnr.CapDb, Check(verdict, "decode_mean_psnr_db").Value);
    }

    [Fact]
    public async Task A_prefix_of_latent_frames_decodes_to_the_same_first_frames()
    {
        using var x0 = await Reveal(Job.FinalLatent);
        using var prefix = Job.FinalLatent.narrow(1, 0, 2);

        var decoded = await Job.Executor.DecodeAsync(prefix, Ct);
        var verdict = await V1(x0, Job.Trajectory, new VideoValidationOptions { DecodeLatentFrames = 2 });

        // Two latent frames give 1 + 4 frames, byte for byte the whole latent's first five.
        Assert.Equal(5, decoded.FrameCount);
        Assert.Equal(Job.Video.Frames.AsSpan(0, 5 * Job.Video.FrameBytes).ToArray(), decoded.Frames);
        Assert.True(verdict.Accept);
        Assert.True(verdict.BitExact);
        Assert.Contains("5 frames", Check(verdict, "decode_mean_psnr_db").Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_perturbed_latent_fails_the_decode_check()
    {
        // The executor commits to (and reveals) a latent that is not its video's: x0 plus noise of half the latent's
        // scale. Its decode lands at 22 dB, SSIM 0.65 and 14 pHash bits from the delivered frames (measured), where the
        // honest decode is identical; τ_dec 30 dB, τ_ssim 0.9 and τ_ph 10 bits fall between.
        using var noise = randn(Job.FinalLatent.shape, generator: new Generator(7));
        using var perturbed = Job.FinalLatent + 0.5f * noise;
        using var x0 = await Reveal(perturbed);

        var verdict = await V1(x0, Committing(perturbed));

        Log(verdict);
        Assert.Equal(["decode_mean_psnr_db", "decode_min_ssim", "decode_max_phash_bits"], Failed(verdict));
        Assert.False(verdict.BitExact);
    }

    [Fact]
    public async Task A_latent_other_than_the_committed_one_is_not_decoded()
    {
        using var shifted = Job.FinalLatent + 1e-3f;
        using var x0 = await Reveal(shifted);

        var verdict = await V1(x0, Job.Trajectory);

        Assert.Equal(["final_latent_sha256"], Failed(verdict));
        Assert.DoesNotContain(verdict.Checks, c => c.Name.StartsWith("decode", StringComparison.Ordinal));
        Assert.Null(verdict.BitExact);
    }

    [Fact]
    public async Task A_latent_file_without_a_single_float32_x0_is_refused()
    {
        var path = await Write([1, 2, 3]);
        using var half = Job.FinalLatent.to(ScalarType.Float16);
        var other = Path.Combine(Path.GetDirectoryName(path)!, "other.safetensors");
        SafetensorsWriter.Write(other, [new KeyValuePair<string, Tensor>("x", Job.FinalLatent)]);
        var f16 = Path.Combine(Path.GetDirectoryName(path)!, "f16.safetensors");
        SafetensorsWriter.Write(f16, [new KeyValuePair<string, Tensor>(FinalLatent.TensorName, half)]);

        foreach (var file in new[] { path, other, f16 })
            Assert.Equal("final_latent", Assert.Throws<ValidationInputException>(() => FinalLatent.Read(file, "final_latent")).Field);
    }

    [Fact]
    public async Task An_honest_reveal_passes_the_step_checks_with_zero_errors()
    {
        var states = States(Job.Spec);
        using var reveal = Reveal(Job.Trajectory, states, "block 17", 2);

        var verdict = await Steps(ManifestWithTrajectory(), Job.Trajectory, reveal, "block 17", 2);

        Log(verdict);
        Assert.True(verdict.Accept);
        var k = reveal.Manifest.Challenged;
        Assert.Equal(["commitment_merkle_root", "commitment_h_final", "trajectory_consistent", "challenges_match_beacon",
            .. k[0] <= 2 ? ["initial_noise"] : Array.Empty<string>(),
            .. k.SelectMany(step => new[] { "proofs", "hashes", "e_v", "e_x", "replay", "sketches" }.Select(c => $"step_{step}_{c}"))],
            verdict.Checks.Select(c => c.Name));
        // Same weights, same CPU, same float32 kernels: the replay is bit-exact.
        Assert.All(verdict.Checks.Where(c => c.Rule == CheckRule.AtMost), c => Assert.Equal(0.0, Convert.ToDouble(c.Value)));
    }

    [Fact]
    public async Task A_tampered_velocity_in_the_reveal_fails_the_hash_of_its_step()
    {
        // v_k of a challenged step nudged by 1e-3 after the fact: m_k = x̃_k − σ_k·v_k no longer hashes to h_k.
        var path = RevealFile(Job.Trajectory, States(Job.Spec), "block 17", 1);
        var k = RevealManifest.For(Job.Trajectory, "block 17", 1).Challenged[0];
        using var tampered = Tampered(path, RevealBundle.VelocityTensor(k), v => v + 1e-3f);

        var verdict = await Steps(ManifestWithTrajectory(), Job.Trajectory, tampered, "block 17", 1);

        Log(verdict);
        Assert.False(verdict.Accept);
        Assert.Contains($"step_{k}_hashes", Failed(verdict));
        Assert.True(Check(verdict, $"step_{k}_e_v").Pass, "the validator's own velocity still matches the committed sketch");
    }

    [Fact]
    public async Task A_reveal_of_steps_the_beacon_did_not_select_fails()
    {
        var states = States(Job.Spec);
        var asked = Enumerable.Range(0, 100).Select(i => $"beacon {i}").First(b =>
            !StepChallenges.Select(b, Job.Trajectory.MerkleRoot, [.. Job.Trajectory.Records.Select(r => r.Expert)], 1)
                .SequenceEqual(StepChallenges.Select("mine", Job.Trajectory.MerkleRoot, [.. Job.Trajectory.Records.Select(r => r.Expert)], 1)));
        using var reveal = Reveal(Job.Trajectory, states, "mine", 1);

        var verdict = await Steps(ManifestWithTrajectory(), Job.Trajectory, reveal, asked, 1);

        Assert.Equal(["trajectory_consistent", "challenges_match_beacon"], Failed(verdict));
    }

    [Fact]
    public async Task A_consistent_run_of_another_seed_fails_only_on_its_noise()
    {
        // The executor ran seed 43 and committed to it honestly, under the job's id. Every step it reveals replays exactly:
        // teacher-forced steps cannot see the seed; x̃_0 against the job's noise can.
        var other = States(Job.Spec with { Seed = 43 }, out var run);
        var claimed = new TrajectoryCommitment(Job.Spec.JobId, run.Jl, run.LatentShape, run.Records, run.FinalHash, run.FinalSketch);
        using var reveal = Reveal(claimed, other, "all", 4);

        var verdict = await Steps(Manifest(), claimed, reveal, "all", 4);

        Log(verdict);
        Assert.Equal(["initial_noise"], Failed(verdict));
        Assert.True(Convert.ToDouble(Check(verdict, "initial_noise").Value) > 1, "another seed's noise is ≈ √2 away");
    }

    [Fact]
    public async Task Regeneration_of_an_honest_job_is_bit_exact()
    {
        var verdict = await V2(Manifest());

        Log(verdict);
        Assert.True(verdict.Accept);
        Assert.True(verdict.BitExact);
        Assert.Equal(["regeneration_mean_psnr_db", "regeneration_min_ssim", "regeneration_max_phash_bits"],
            verdict.Checks.Skip(6).Select(c => c.Name));
    }

    [Fact]
    public async Task Regeneration_rejects_a_video_that_is_not_the_specs()
    {
        // The manifest claims seed 43 (its job id is that spec's) for the seed-42 video: V0 cannot tell, V2 can. The other
        // seed's video is 16.5 dB, SSIM 0.04 and 32 pHash bits away (measured), far outside the end-to-end bounds.
        var manifest = Manifest();
        var claimed = Job.Spec with { Seed = 43 };
        (manifest["job_spec"], manifest["job_id"]) = (JsonNode.Parse(claimed.CanonicalJson()), claimed.JobId);

        var verdict = await V2(manifest);

        Log(verdict);
        Assert.Equal(["regeneration_mean_psnr_db", "regeneration_min_ssim", "regeneration_max_phash_bits"], Failed(verdict));
        Assert.False(verdict.BitExact);
    }

    [Fact]
    public void A_spec_this_node_does_not_run_is_a_replay_conflict()
    {
        var planner = Job.Executor.Planner.WithLimits(new WanJobLimits(MaxFrames: 5));

        Assert.Null(WanVideoValidator.FindReplayConflict(Job.Executor.Planner, Job.Spec));
        Assert.Equal("num_frames", WanVideoValidator.FindReplayConflict(planner, Job.Spec)?.Field);
        Assert.Equal("weights", WanVideoValidator.FindReplayConflict(Job.Executor.Planner, Job.Spec with { Weights = [new("vae/x.safetensors", new string('0', 64))] })?.Field);
        Assert.Equal("model", WanVideoValidator.FindReplayConflict(Job.Executor.Planner, Job.Spec with { Model = "Wan-AI/elsewhere" })?.Field);
        Assert.Equal("guidance_scale_high_noise", WanVideoValidator.FindReplayConflict(Job.Executor.Planner, Job.Spec with { GuidanceScaleHighNoise = -1 })?.Field);
    }

    private async Task<ValidationVerdict> V0(JsonObject manifest, byte[] file, VideoFormat format, VideoValidationOptions? options = null)
    {
        var parsed = Parse(manifest);
        var video = await new DeliveredVideoReader("ffmpeg").ReadAsync(await Write(file), format, parsed.Spec, Ct);
        var verdict = new ValidationVerdict();
        new WanVideoValidator(options ?? new VideoValidationOptions()).CheckDelivery(parsed, video, verdict);
        return verdict;
    }

    private async Task<ValidationVerdict> V1(FinalLatent x0, TrajectoryCommitment commitment, VideoValidationOptions? options = null)
    {
        var manifest = Parse(Manifest());
        var video = await new DeliveredVideoReader("ffmpeg").ReadAsync(await Write(Job.Video.Frames), VideoFormat.Frames, manifest.Spec, Ct);
        var verdict = new ValidationVerdict();
        var validator = new WanVideoValidator(options ?? new VideoValidationOptions());
        Assert.True(validator.CheckDelivery(manifest, video, verdict));
        await validator.CheckDecodeAsync(manifest, video, x0, commitment, Job.Executor, verdict, Ct);
        return verdict;
    }

    private async Task<ValidationVerdict> V2(JsonObject manifestJson)
    {
        var manifest = Parse(manifestJson);
        var video = await new DeliveredVideoReader("ffmpeg").ReadAsync(await Write(Job.Video.Frames), VideoFormat.Frames, manifest.Spec, Ct);
        var verdict = new ValidationVerdict();
        var validator = new WanVideoValidator(new VideoValidationOptions());
        Assert.True(validator.CheckDelivery(manifest, video, verdict));
        await validator.CheckRegenerationAsync(manifest, video, Job.Executor, verdict, Ct);
        return verdict;
    }

    private async Task<ValidationVerdict> Steps(JsonObject manifestJson, TrajectoryCommitment commitment, RevealBundle reveal, string beacon, int count)
    {
        var verdict = new ValidationVerdict();
        await new WanVideoValidator(new VideoValidationOptions()).CheckStepsAsync(Parse(manifestJson), commitment, reveal, beacon, count, Job.Executor, verdict, Ct);
        return verdict;
    }

    /// <summary>The sampler states of <paramref name="spec"/> run again on the job's executor, kept in the test's folder.</summary>
    private StepStateStore States(WanJobSpec spec) => States(spec, out _);

    private StepStateStore States(WanJobSpec spec, out TrajectoryCommitment trajectory)
    {
        var states = new StepStateStore(Path.Combine(_folder.FullName, $"states-{Guid.NewGuid():N}"));
        trajectory = Job.Executor.Pipeline.Generate(spec, Job.Executor.Planner.Model, null, states, Ct).Trajectory;
        return states;
    }

    private RevealBundle Reveal(TrajectoryCommitment commitment, StepStateStore states, string beacon, int count) =>
        RevealBundle.Open(RevealFile(commitment, states, beacon, count));

    private string RevealFile(TrajectoryCommitment commitment, StepStateStore states, string beacon, int count)
    {
        var path = Path.Combine(_folder.FullName, $"reveal-{Guid.NewGuid():N}.safetensors");
        RevealBundle.Write(path, commitment, states, beacon, count);
        return path;
    }

    /// <summary>A copy of the reveal at <paramref name="path"/> with tensor <paramref name="name"/> replaced by <paramref name="change"/> of it.</summary>
    private RevealBundle Tampered(string path, string name, Func<Tensor, Tensor> change)
    {
        var copy = Path.Combine(_folder.FullName, $"tampered-{Guid.NewGuid():N}.safetensors");
        using (var scope = NewDisposeScope())
        using (var file = SafetensorsFile.Open(path))
        {
            var tensors = file.Tensors.Select(t => KeyValuePair.Create(t.Name, t.Name == name ? change(file.Load(t.Name)) : file.Load(t.Name))).ToList();
            SafetensorsWriter.Write(copy, tensors, file.Metadata);
        }
        return RevealBundle.Open(copy);
    }

    /// <summary>The manifest with the short form of the job's commitment, as GET /v1/videos/{id} gives it.</summary>
    private static JsonObject ManifestWithTrajectory()
    {
        var manifest = Manifest();
        manifest["trajectory"] = new JsonObject
        {
            ["merkle_root"] = Convert.ToHexStringLower(Job.Trajectory.MerkleRoot),
            ["h_final"] = Convert.ToHexStringLower(Job.Trajectory.FinalHash),
        };
        return manifest;
    }

    /// <summary>A latent as an executor reveals it: a safetensors file with one tensor "x0", read back.</summary>
    private async Task<FinalLatent> Reveal(Tensor x0)
    {
        var path = await Write([]);
        SafetensorsWriter.Write(path, [new KeyValuePair<string, Tensor>(FinalLatent.TensorName, x0)]);
        return FinalLatent.Read(path, "final_latent");
    }

    /// <summary>The job's commitment with <paramref name="x0"/>'s hash as h_final: an executor committing to another latent.</summary>
    private static TrajectoryCommitment Committing(Tensor x0)
    {
        var c = Job.Trajectory;
        return new TrajectoryCommitment(c.JobId, c.Jl, c.LatentShape, c.Records, TensorHash.Sha256(x0), c.FinalSketch);
    }

    private static VideoManifest Parse(JsonObject manifest) => VideoManifest.Parse(JsonDocument.Parse(manifest.ToJsonString()).RootElement);

    private static string[] Failed(ValidationVerdict verdict) => [.. verdict.Checks.Where(c => !c.Pass).Select(c => c.Name)];

    private static ValidationCheck Check(ValidationVerdict verdict, string name) => verdict.Checks.Single(c => c.Name == name);

    /// <summary>The job's manifest as a worker's GET /v1/videos/{id} gives it once completed.</summary>
    private static JsonObject Manifest() => new()
    {
        ["id"] = "video_test",
        ["object"] = "video",
        ["status"] = "completed",
        ["job_id"] = Job.Spec.JobId,
        ["job_spec"] = JsonNode.Parse(Job.Spec.CanonicalJson()),
        ["hashes"] = new JsonObject
        {
            ["frames_sha256"] = Job.Hashes.FramesSha256,
            ["mp4_sha256"] = Job.Hashes.Mp4Sha256,
            ["phash"] = new JsonArray([.. Job.Hashes.PHashes.Select(h => JsonValue.Create(h))]),
            ["dhash"] = new JsonArray([.. Job.Hashes.DHashes.Select(h => JsonValue.Create(h))]),
        },
    };

    private static byte[] Delivery(VideoFormat format) => format switch
    {
        VideoFormat.Mp4 => Job.Mp4,
        VideoFormat.Png => PngArchive.Zip(Job.Video),
        _ => Job.Video.Frames,
    };

    public void Dispose() => _folder.Delete(recursive: true);

    /// <summary>A new file of the test's folder holding <paramref name="bytes"/>.</summary>
    private async Task<string> Write(byte[] bytes)
    {
        var path = Path.Combine(_folder.FullName, Guid.NewGuid().ToString("N"));
        await File.WriteAllBytesAsync(path, bytes, Ct);
        return path;
    }

    private static void Log(ValidationVerdict verdict)
    {
        foreach (var c in verdict.Checks)
            TestContext.Current.TestOutputHelper?.WriteLine($"{c.Name}: {c.Value} {c.Rule} {c.Threshold}: {(c.Pass ? "pass" : "FAIL")} ({c.Detail})");
    }
}

using MLNode.Engines.Dit;
using MLNode.Engines.Dit.Sampling;
using MLNode.Engines.Dit.Trajectory;
using MLNode.Protocol.Diffusion;
using MLNode.Protocol.Poc;
using MLNode.Runtime.Checkpoints;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Dit;

/// <summary>
/// wan-tiny's reference job run on the CPU with its trajectory committed and its states stored, plus three more runs: the
/// same job again, the job with seed 43, and the job with shift 5. Every step must replay bit for bit from its stored
/// state; an honest reveal verifies with every error exactly 0 on this device; reveals built from another run's states
/// fail their hashes and show errors far above rounding.
/// </summary>
public sealed class TrajectoryTests(TrajectoryTests.Runs runs) : IClassFixture<TrajectoryTests.Runs>
{
    // An honest executor and validator on the same device agree to the bit, so 0 is exact. Across GPUs the spec expects
    // honest e_v ≈ 1e-3 (dit-wan22.md §5.6 E); e_x is that velocity error times the step's share of the latent,
    // (σ_k − σ_{k+1})·‖v‖/‖x̃_{k+1}‖, a few 1e-5 at wan-tiny's first step. The floors sit ten times above e_v's and
    // tens of times above e_x's honest level; the cheats below measure e_v ≥ 1.3 and e_x ≥ 9e-3.
    private const double VelocityCheatFloor = 1e-2;
    private const double StepCheatFloor = 1e-3;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void The_same_job_commits_to_the_same_bytes_and_stores_the_same_states()
    {
        Assert.Equal(runs.Honest.Commitment.ToJson(), runs.Again.Commitment.ToJson());
        for (var k = 0; k < runs.Honest.Commitment.Steps; k++)
            Assert.Equal(File.ReadAllBytes(runs.Honest.States.StepPath(k)), File.ReadAllBytes(runs.Again.States.StepPath(k)));
        Assert.Equal(File.ReadAllBytes(runs.Honest.States.FinalPath), File.ReadAllBytes(runs.Again.States.FinalPath));
        Assert.NotEqual(runs.Honest.Commitment.MerkleRoot, runs.OtherSeed.Commitment.MerkleRoot);
    }

    [Fact]
    public void Records_follow_the_schedule_and_hash_and_sketch_the_stored_states()
    {
        var commitment = runs.Honest.Commitment;
        var schedule = WanPipeline.Schedule(runs.Spec);

        Assert.Equal(runs.Spec.JobId, commitment.JobId);
        Assert.Equal([16L, 3, 8, 8], commitment.LatentShape);
        Assert.Equal([999, 972, 922, 799], commitment.Records.Select(r => r.Timestep));
        Assert.Equal([0, 0, 0, 1], commitment.Records.Select(r => r.Expert));
        Assert.Equal([4.0, 4.0, 4.0, 3.0], commitment.Records.Select(r => r.Guidance));
        foreach (var record in commitment.Records)
        {
            var (sample, velocity, _) = Load(runs.Honest.States, record.Step);
            using var x0 = FlowUniPcSampler.PredictX0(sample, velocity, schedule.Sigmas[record.Step]);
            Assert.Equal(record.Hash, TensorHash.Sha256(sample, x0));
            var sketches = JlSketch.Default.Sketch(sample, velocity);
            Assert.Equal(record.LatentSketch, sketches[0]);
            Assert.Equal(record.VelocitySketch, sketches[1]);
        }
        using var final = FinalLatent(runs.Honest.States);
        Assert.Equal(commitment.FinalHash, TensorHash.Sha256(final));
        Assert.Equal(TrajectoryCommitment.Parse(commitment.ToJson()).MerkleRoot, commitment.MerkleRoot);
    }

    [Fact]
    public void Every_step_replays_bit_for_bit_from_its_stored_state()
    {
        var schedule = WanPipeline.Schedule(runs.Spec);
        var steps = schedule.Steps;
        var x0Predictions = new Tensor[steps];

        for (var k = 0; k < steps; k++)
        {
            var (sample, velocity, lastSample) = Load(runs.Honest.States, k);
            x0Predictions[k] = FlowUniPcSampler.PredictX0(sample, velocity, schedule.Sigmas[k]);
            using var sampler = FlowUniPcSampler.Resume(schedule, k, lastSample, k >= 1 ? x0Predictions[k - 1] : null, k >= 2 ? x0Predictions[k - 2] : null);
            if (k >= 1)
            {
                using var repeated = sampler.RepeatLastPrediction();
                Assert.True(SameBits(sample, repeated), $"step {k}: the stored last sample does not predict x̃_{k}");
            }

            using var next = sampler.Step(velocity, sample);

            using var expected = k + 1 < steps ? Load(runs.Honest.States, k + 1).Sample : FinalLatent(runs.Honest.States);
            Assert.True(SameBits(expected, next), $"step {k}: the replay differs from the run");
        }
    }

    [Fact]
    public void An_honest_reveal_of_every_step_verifies_with_zero_errors()
    {
        var verification = Verify(runs.Honest.Commitment, runs.Honest.States, "honest", count: 4);

        Assert.Empty(verification.Problems);
        Assert.True(verification.ChallengesAsSelected);
        Assert.Equal([0, 1, 2, 3], verification.Steps.Select(s => s.Step));
        foreach (var step in verification.Steps)
        {
            Assert.True(step.ProofsVerify && step.HashesMatch, $"step {step.Step}: proofs {step.ProofsVerify}, hashes {step.HashesMatch}");
            Assert.Equal((0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
                (step.VelocityError, step.StepError, step.ReplayError, step.LastSampleError, step.LatentSketchError, step.VelocitySketchError));
        }
        Assert.Equal([WanRouting.HighNoiseExpert, WanRouting.HighNoiseExpert, WanRouting.HighNoiseExpert, WanRouting.LowNoiseExpert],
            verification.Steps.Select(s => s.Expert));
    }

    [Fact]
    public void Two_challenges_take_one_step_of_each_expert()
    {
        var verification = Verify(runs.Honest.Commitment, runs.Honest.States, "beacon 7", count: 2);

        Assert.True(verification.ChallengesAsSelected);
        Assert.Equal([WanRouting.HighNoiseExpert, WanRouting.LowNoiseExpert], verification.Steps.Select(s => s.Expert));
        Assert.All(verification.Steps, s => Assert.Equal(0.0, s.VelocityError));
    }

    [Fact]
    public void The_final_latent_checks_against_h_final_and_a_changed_one_does_not()
    {
        using var final = FinalLatent(runs.Honest.States);
        using var changed = final + 1e-3f;

        var honest = StepRevealVerifier.VerifyFinalLatent(runs.Honest.Commitment, final);
        var tampered = StepRevealVerifier.VerifyFinalLatent(runs.Honest.Commitment, changed);

        Assert.Equal(new FinalLatentVerification(true, 0), honest);
        Assert.False(tampered.HashMatches);
        Assert.True(tampered.SketchError > 0);
    }

    [Fact]
    public void Another_seeds_states_fail_the_hashes_and_the_sketches()
    {
        var verification = Verify(runs.Honest.Commitment, runs.OtherSeed.States, "swap", count: 2);

        foreach (var step in verification.Steps)
        {
            Log(step);
            Assert.True(step.ProofsVerify);
            Assert.False(step.HashesMatch);
            Assert.True(step.VelocityError > VelocityCheatFloor, $"step {step.Step}: e_v {step.VelocityError:E3}");
            Assert.True(step.LatentSketchError > VelocityCheatFloor, $"step {step.Step}: latent sketch error {step.LatentSketchError:E3}");
        }
    }

    [Fact]
    public void A_run_with_the_wrong_shift_fails_the_hashes_and_the_replay()
    {
        // The executor ran shift 5 but claims the job (shift 12): its own states and records under the job's id.
        var run = runs.WrongShift.Commitment;
        var claimed = new TrajectoryCommitment(runs.Spec.JobId, run.Jl, run.LatentShape, run.Records, run.FinalHash, run.FinalSketch);

        var verification = Verify(claimed, runs.WrongShift.States, "shift", count: 4);

        Assert.Contains(verification.Problems, p => p.Contains("claims timestep", StringComparison.Ordinal));
        foreach (var step in verification.Steps)
        {
            Log(step);
            Assert.True(step.ProofsVerify);
            // Its sketches are of its own states; but m_j recomputed with the job's σ_j is not the m_j it hashed.
            Assert.Equal((0.0, 0.0), (step.LatentSketchError, step.VelocitySketchError));
            Assert.False(step.HashesMatch);
            Assert.True(step.StepError > StepCheatFloor, $"step {step.Step}: e_x {step.StepError:E3}");
            Assert.True(step.ReplayError > StepCheatFloor, $"step {step.Step}: replay error {step.ReplayError:E3}");
        }
    }

    [Fact]
    public void A_reveal_for_another_beacon_is_not_the_one_asked_for()
    {
        var path = Path.Combine(runs.Folder, $"reveal-{Guid.NewGuid():N}.safetensors");
        RevealBundle.Write(path, runs.Honest.Commitment, runs.Honest.States, "the executor's favourite", 1);
        using var reveal = RevealBundle.Open(path);
        var verifier = new StepRevealVerifier(runs.Pipeline, WanTiny.Facts());
        var asked = Enumerable.Range(0, 100).Select(i => $"beacon {i}")
            .First(b => !StepChallenges.Select(b, runs.Honest.Commitment.MerkleRoot, [0, 0, 0, 1], 1).SequenceEqual(reveal.Manifest.Challenged));

        var verification = verifier.Verify(runs.Spec, runs.Honest.Commitment, reveal, asked, 1, Ct);

        Assert.False(verification.ChallengesAsSelected);
        Assert.Contains(verification.Problems, p => p.Contains("beacon", StringComparison.Ordinal));
    }

    private RevealVerification Verify(TrajectoryCommitment commitment, StepStateStore states, string beacon, int count)
    {
        var path = Path.Combine(runs.Folder, $"reveal-{Guid.NewGuid():N}.safetensors");
        RevealBundle.Write(path, commitment, states, beacon, count);
        using var reveal = RevealBundle.Open(path);
        return new StepRevealVerifier(runs.Pipeline, WanTiny.Facts()).Verify(runs.Spec, commitment, reveal, beacon, count, Ct);
    }

    private static (Tensor Sample, Tensor Velocity, Tensor? LastSample) Load(StepStateStore states, int step)
    {
        using var file = states.OpenStep(step);
        return (file.Load(StepStateStore.Sample), file.Load(StepStateStore.Velocity),
            file.Contains(StepStateStore.LastSample) ? file.Load(StepStateStore.LastSample) : null);
    }

    private static Tensor FinalLatent(StepStateStore states)
    {
        using var file = states.OpenFinal();
        return file.Load(StepStateStore.FinalLatent);
    }

    private static bool SameBits(Tensor a, Tensor b)
    {
        using var left = a.contiguous();
        using var right = b.contiguous();
        return left.bytes.SequenceEqual(right.bytes);
    }

    private static void Log(StepVerification step) => TestContext.Current.TestOutputHelper?.WriteLine(
        $"step {step.Step}: e_v {step.VelocityError:E3}, e_x {step.StepError:E3}, replay {step.ReplayError:E3}, last sample {step.LastSampleError:E3}, " +
        $"s_k {step.LatentSketchError:E3}, u_k {step.VelocitySketchError:E3}, hashes {step.HashesMatch}");

    /// <summary>The four runs, each with its commitment and its stored states in a temporary folder.</summary>
    public sealed class Runs : IDisposable
    {
        public Runs()
        {
            Folder = Directory.CreateTempSubdirectory("mlnode-trajectory-").FullName;
            Pipeline = WanTiny.CpuPipeline(WanTiny.Numerics.Float32);
            Spec = WanTiny.ReferenceSpec();
            Honest = Run("honest", Spec);
            Again = Run("again", Spec);
            OtherSeed = Run("seed43", Spec with { Seed = 43 });
            WrongShift = Run("shift5", Spec with { FlowShift = 5 });
        }

        public string Folder { get; }
        public WanPipeline Pipeline { get; }
        public WanJobSpec Spec { get; }
        public Run Honest { get; }
        public Run Again { get; }
        public Run OtherSeed { get; }
        public Run WrongShift { get; }

        public void Dispose() => Directory.Delete(Folder, recursive: true);

        private Run Run(string name, WanJobSpec spec)
        {
            var states = new StepStateStore(Path.Combine(Folder, name));
            return new Run(Pipeline.Generate(spec, WanTiny.Facts(), null, states, CancellationToken.None).Trajectory, states);
        }
    }

    public sealed record Run(TrajectoryCommitment Commitment, StepStateStore States);
}

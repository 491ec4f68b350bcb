using MLNode.Engines.Dit.Sampling;
using MLNode.Protocol.Diffusion;
using static TorchSharp.torch;

namespace MLNode.Engines.Dit.Trajectory;

/// <summary>
/// One challenged step k checked (dit-wan22.md §5.6 (C) V1.2); the numbers are relative L2 errors, 0 where the bits agree.
/// Thresholds are the caller's: same engine on the same device should give 0 throughout.
/// </summary>
/// <param name="Timestep">The spec's timestep at k, which the forwards ran at (not the record's claim).</param>
/// <param name="ProofsVerify">Every revealed record (k − 2 … k + 1) reaches the committed Merkle root by its proof.</param>
/// <param name="HashesMatch">
/// h_j = SHA-256(x̃_j ‖ m_j) for every revealed step j, with m_j = x̃_j − σ_j·v_j recomputed from the revealed velocity;
/// and, when k is the last step, SHA-256(x0) = h_final for its successor.
/// </param>
/// <param name="LastSampleError">
/// Step k − 1's predictor from the revealed x_{k−1}, m_{k−1}, m_{k−2} against x̃_k: binds the unhashed last sample to the
/// hashed chain (0 at step 0).
/// </param>
/// <param name="VelocityError">e_v = ‖JL(v_val) − u_k‖ / ‖JL(v_val)‖, the validator's own velocity's sketch rounded to fp16 as u_k was.</param>
/// <param name="StepError">e_x = ‖x̃_{k+1}^val − x̃_{k+1}‖ / ‖x̃_{k+1}‖: the sampler step replayed with the validator's velocity.</param>
/// <param name="ReplayError">The same with the executor's revealed velocity: the sampler's arithmetic alone (shift, order, coefficients).</param>
/// <param name="LatentSketchError">‖JL(x̃_k) − s_k‖ / ‖s_k‖: the committed sketch against the revealed latent.</param>
/// <param name="VelocitySketchError">‖JL(v_k) − u_k‖ / ‖u_k‖: the committed sketch against the revealed velocity.</param>
public sealed record StepVerification(
    int Step, int Timestep, int Expert, double Guidance,
    bool ProofsVerify, bool HashesMatch,
    double LastSampleError, double VelocityError, double StepError, double ReplayError,
    double LatentSketchError, double VelocitySketchError);

/// <param name="Problems">What in the commitment or the reveal's manifest disagrees with the job (empty when all agree).</param>
/// <param name="Selected">The steps the beacon selects from the commitment.</param>
/// <param name="Challenged">The steps the reveal answers.</param>
/// <param name="InitialNoiseError">
/// ‖x̃_0 − noise‖ / ‖noise‖ of the revealed x̃_0 against the job's seeded noise on the validator's device, when the reveal
/// carries step 0 (a challenge of step 0, 1 or 2); null otherwise. Teacher-forced steps cannot see the seed: this is
/// what binds the trajectory to it.
/// </param>
/// <param name="Steps">One per challenged step on the job's grid (a step the job does not have is not replayed).</param>
public sealed record RevealVerification(
    IReadOnlyList<string> Problems, IReadOnlyList<int> Selected, IReadOnlyList<int> Challenged, double? InitialNoiseError, IReadOnlyList<StepVerification> Steps)
{
    /// <summary>The reveal answers the steps the beacon selects, not others of the executor's choosing.</summary>
    public bool ChallengesAsSelected => Challenged.SequenceEqual(Selected);
}

/// <param name="HashMatches">SHA-256 of x0's float32 bytes is h_final.</param>
/// <param name="SketchError">‖JL(x0) − jl_x0‖ / ‖jl_x0‖.</param>
public sealed record FinalLatentVerification(bool HashMatches, double SketchError);

/// <summary>
/// The validator's side of a step challenge, on the pipeline's device: for each challenged step k, the two forwards of
/// k's expert at the revealed x̃_k with the spec's timestep and guidance, the sampler resumed from the revealed state and
/// stepped once in float32, and every hash, proof and sketch the reveal must agree with.
/// </summary>
public sealed class StepRevealVerifier(WanPipeline pipeline, WanModelFacts model)
{
    /// <summary>Where <paramref name="commitment"/> disagrees with the job: its id, JL, latent shape, steps, or any step's timestep, expert or guidance.</summary>
    public IReadOnlyList<string> CheckCommitment(WanJobSpec spec, TrajectoryCommitment commitment)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(commitment);
        var problems = new List<string>();
        if (commitment.JobId != spec.JobId) problems.Add($"job_id {commitment.JobId} is not the spec's {spec.JobId}");
        if (commitment.Jl != JlSketch.Default.Parameters) problems.Add($"jl {commitment.Jl} is not {JlSketch.Default.Parameters}");
        var shape = model.LatentShape(spec.NumFrames, spec.Height, spec.Width);
        if (!commitment.LatentShape.SequenceEqual(shape))
            problems.Add($"latent_shape [{string.Join(',', commitment.LatentShape)}] is not the job's [{string.Join(',', shape)}]");
        if (commitment.Steps != spec.NumInferenceSteps) problems.Add($"{commitment.Steps} steps committed, the job has {spec.NumInferenceSteps}");
        var schedule = WanPipeline.Schedule(spec);
        var guidance = WanPipeline.Guidance(spec);
        foreach (var record in commitment.Records.Take(schedule.Steps))
        {
            var timestep = schedule.Timesteps[record.Step];
            if (record.Timestep != timestep || record.Expert != guidance.Expert(timestep) || record.Guidance != guidance.Guidance(timestep))
                problems.Add($"step {record.Step} claims timestep {record.Timestep}, expert {record.Expert}, guidance {record.Guidance}; " +
                    $"the job runs it at {timestep}, expert {guidance.Expert(timestep)}, guidance {guidance.Guidance(timestep)}");
        }
        return problems;
    }

    /// <summary>
    /// Checks <paramref name="reveal"/>, the answer to (<paramref name="beacon"/>, <paramref name="count"/>), against the
    /// validator's copy of <paramref name="commitment"/>. Throws <see cref="FormatException"/> when a tensor the reveal
    /// must carry is missing or misshapen.
    /// </summary>
    public RevealVerification Verify(WanJobSpec spec, TrajectoryCommitment commitment, RevealBundle reveal, string beacon, int count, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(reveal);
        var problems = CheckCommitment(spec, commitment).ToList();
        var manifest = reveal.Manifest;
        if (manifest.JobId != commitment.JobId) problems.Add($"the reveal is for job {manifest.JobId}, not {commitment.JobId}");
        if (!manifest.MerkleRoot.AsSpan().SequenceEqual(commitment.MerkleRoot)) problems.Add("the reveal names another Merkle root");
        if (manifest.Steps != commitment.Steps) problems.Add($"the reveal says {manifest.Steps} steps, the commitment {commitment.Steps}");
        if (manifest.Beacon != beacon) problems.Add($"the reveal answers beacon '{manifest.Beacon}', not '{beacon}'");
        var selected = StepChallenges.Select(beacon, commitment.MerkleRoot, [.. commitment.Records.Select(r => r.Expert)], count);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        double? noiseError = null;
        if (manifest.Steps == commitment.Steps && RevealManifest.RevealedSteps(manifest.Challenged, manifest.Steps)[0] == 0)
            noiseError = RelativeError(reveal.Load(RevealBundle.SampleTensor(0), model.LatentShape(spec.NumFrames, spec.Height, spec.Width), pipeline.Device),
                WanPipeline.InitialNoise(spec, model, pipeline.Device));
        var contexts = pipeline.Contexts(spec, ct);
        var steps = new List<StepVerification>();
        // A step is replayed on the job's own grid, where the job has it: a commitment of another step count is already
        // a problem, and its steps' errors then show how far its trajectory is from the job's.
        var replayable = manifest.Steps == commitment.Steps ? manifest.Challenged.Where(k => k < spec.NumInferenceSteps) : [];
        foreach (var k in replayable)
        {
            ct.ThrowIfCancellationRequested();
            steps.Add(VerifyStep(spec, commitment, reveal, k, contexts, ct));
        }
        return new RevealVerification(problems, selected, manifest.Challenged, noiseError, steps);
    }

    /// <summary>Checks a revealed final latent (the latent the VAE decodes) against h_final and JL(x0).</summary>
    public static FinalLatentVerification VerifyFinalLatent(TrajectoryCommitment commitment, Tensor finalLatent)
    {
        ArgumentNullException.ThrowIfNull(commitment);
        ArgumentNullException.ThrowIfNull(finalLatent);
        if (!finalLatent.shape.SequenceEqual(commitment.LatentShape) || finalLatent.dtype != ScalarType.Float32)
            return new FinalLatentVerification(false, double.PositiveInfinity);
        var sketch = JlSketch.Default.Sketch(finalLatent)[0];
        return new FinalLatentVerification(TensorHash.Sha256(finalLatent).AsSpan().SequenceEqual(commitment.FinalHash),
            JlSketch.RelativeDistance(sketch, commitment.FinalSketch, commitment.FinalSketch));
    }

    private StepVerification VerifyStep(WanJobSpec spec, TrajectoryCommitment commitment, RevealBundle reveal, int k, Tensor contexts, CancellationToken ct)
    {
        using var scope = NewDisposeScope();
        var schedule = WanPipeline.Schedule(spec);
        var guidance = WanPipeline.Guidance(spec);
        var shape = model.LatentShape(spec.NumFrames, spec.Height, spec.Width);
        var device = pipeline.Device;
        var last = commitment.Steps - 1;
        var manifest = reveal.Manifest;

        var revealed = RevealManifest.RevealedSteps([k], commitment.Steps);
        var proofsVerify = revealed.All(j => manifest.Record(j) is var r && MerkleTree.Verify(r.Record.Encode(), j, commitment.Steps, r.Proof, commitment.MerkleRoot));
        var samples = revealed.ToDictionary(j => j, j => reveal.Load(RevealBundle.SampleTensor(j), shape, device));
        var velocities = revealed.ToDictionary(j => j, j => reveal.Load(RevealBundle.VelocityTensor(j), shape, device));
        var x0Predictions = revealed.ToDictionary(j => j, j => FlowUniPcSampler.PredictX0(samples[j], velocities[j], schedule.Sigmas[j]));
        var hashesMatch = revealed.All(j => TensorHash.Sha256(samples[j], x0Predictions[j]).AsSpan().SequenceEqual(manifest.Record(j).Record.Hash));
        Tensor next;
        if (k == last)
        {
            next = reveal.Load(RevealBundle.FinalLatentTensor, shape, device);
            hashesMatch &= TensorHash.Sha256(next).AsSpan().SequenceEqual(commitment.FinalHash);
        }
        else
        {
            next = samples[k + 1];
        }

        var lastSample = k >= 1 ? reveal.Load(RevealBundle.LastSampleTensor(k), shape, device) : null;
        FlowUniPcSampler Resumed() => FlowUniPcSampler.Resume(schedule, k, lastSample,
            k >= 1 ? x0Predictions[k - 1] : null, k >= 2 ? x0Predictions[k - 2] : null);
        double lastSampleError = 0;
        if (k >= 1)
        {
            using var history = Resumed();
            lastSampleError = RelativeError(history.RepeatLastPrediction(), samples[k]);
        }

        var timestep = schedule.Timesteps[k];
        var velocity = pipeline.Velocity(samples[k], timestep, guidance, contexts, ct);
        var sketches = JlSketch.Default.Sketch(velocity, velocities[k], samples[k]);
        var record = manifest.Record(k).Record;
        using var validatorSampler = Resumed();
        using var executorSampler = Resumed();
        return new StepVerification(k, timestep, guidance.Expert(timestep), guidance.Guidance(timestep), proofsVerify, hashesMatch,
            lastSampleError,
            JlSketch.RelativeDistance(sketches[0], record.VelocitySketch, sketches[0]),
            RelativeError(validatorSampler.Step(velocity, samples[k]), next),
            RelativeError(executorSampler.Step(velocities[k], samples[k]), next),
            JlSketch.RelativeDistance(sketches[2], record.LatentSketch, record.LatentSketch),
            JlSketch.RelativeDistance(sketches[1], record.VelocitySketch, record.VelocitySketch));
    }

    /// <summary>‖a − b‖ / ‖b‖ in float64.</summary>
    private static double RelativeError(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var reference = b.to(ScalarType.Float64);
        return ((a.to(ScalarType.Float64) - reference).norm() / reference.norm()).item<double>();
    }
}

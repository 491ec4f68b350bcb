using System.Text.Json;
using MLNode.Engines.Dit.Trajectory;
using MLNode.Protocol.Diffusion;

namespace MLNode.Engines.Dit.Validation.Calibration;

/// <summary>
/// An executor of a calibration: its pipeline (device, dtype, weights) and the job it really runs for the job it is
/// given (<see cref="Executes"/>; the job itself for an honest executor). Whatever it runs, it claims the given job.
/// </summary>
public sealed record WanCalibrationCase(string Name, bool Honest, string Description, WanPipeline Executor, Func<WanJobSpec, WanJobSpec> Executes)
{
    public static WanCalibrationCase Runs(string name, string description, WanPipeline executor) => new(name, true, description, executor, spec => spec);

    public static WanCalibrationCase Cheats(string name, string description, WanPipeline executor, Func<WanJobSpec, WanJobSpec> executes) =>
        new(name, false, description, executor, executes);
}

/// <summary>
/// One calibration job (<see cref="Job"/>, the <see cref="JobIndex"/>-th) run by one case's executor and checked by the
/// validator: the replay of every step it committed (<see cref="Reveal"/>) and V1's step checks of that replay at the
/// validator's thresholds (<see cref="StepChecks"/>: every step challenged), and the end-to-end comparison of its frames
/// and JL(x0) with the validator's own regeneration of the job.
/// </summary>
public sealed record CalibrationRun(string Case, bool Honest, int JobIndex, WanJobSpec Job, RevealVerification Reveal, ValidationVerdict StepChecks,
    VideoComparison EndToEnd, double FinalSketchError);

/// <summary>
/// The calibration of spec §5.6 (E) on a model small enough to run a grid of jobs: each job run by honest executors
/// (other dtypes, other devices) and malign ones (other weights, fewer steps, a wrong shift, boundary or negative prompt,
/// another seed), each claiming the job; the <see cref="Validator"/> (the reference numerics: float32 on the CPU)
/// challenges every step of each commitment (<see cref="StepRevealVerifier"/>, as V1 does for the beacon's steps) and
/// regenerates the job (as V2 does), and holds each replay against <paramref name="options"/>' thresholds as V1 would.
/// <see cref="Metrics"/> turns the runs into samples per metric; <see cref="MetricCalibration"/> into distributions,
/// AUC and thresholds.
/// </summary>
public sealed class WanCalibration(WanPipeline validator, WanModelFacts model, VideoValidationOptions options)
{
    public const string Beacon = "mlnode-wan-calibration";

    public WanPipeline Validator { get; } = validator;
    public WanModelFacts Model { get; } = model;
    public VideoValidationOptions Options { get; } = options;

    /// <summary>Prompts of the calibration grid, the fixture's own first: scenes of different content and motion.</summary>
    public static IReadOnlyList<string> Prompts { get; } =
    [
        "A cat walks on the grass, cinematic lighting.",
        "A red car drives along a coastal road at sunset.",
        "Two dogs chase each other through fresh snow.",
        "A timelapse of clouds rolling over a mountain lake.",
        "A chef slices vegetables in a busy restaurant kitchen.",
        "Fireworks burst over a city skyline at night.",
        "A paper boat drifts down a rainy street.",
        "An astronaut rides a horse across the surface of the moon.",
    ];

    /// <summary>
    /// The job of a model fixture's <c>pipeline_reference.json</c> (its <c>job</c> object: prompts, size, frames, fps,
    /// steps, shift, boundary, guidance, seed) as a request on the official grid.
    /// </summary>
    public static WanJobRequest ReferenceRequest(string fixtureFolder)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(fixtureFolder, "pipeline_reference.json")));
        var job = document.RootElement.GetProperty("job");
        return new WanJobRequest(
            job.GetProperty("prompt").GetString()!,
            job.GetProperty("negative_prompt").GetString(),
            job.GetProperty("width").GetInt32(),
            job.GetProperty("height").GetInt32(),
            job.GetProperty("num_frames").GetInt32(),
            job.GetProperty("fps").GetInt32(),
            job.GetProperty("num_inference_steps").GetInt32(),
            job.GetProperty("flow_shift").GetDouble(),
            job.GetProperty("boundary_ratio").GetDouble(),
            job.GetProperty("guidance_scale_high_noise").GetDouble(),
            job.GetProperty("guidance_scale_low_noise").GetDouble(),
            WanJobSpec.UniPcOfficial,
            job.GetProperty("seed").GetUInt64());
    }

    /// <summary>The grid's jobs: <paramref name="request"/> with each of <paramref name="prompts"/> and each of <paramref name="seeds"/>, planned.</summary>
    public static IReadOnlyList<WanJobSpec> Jobs(WanJobPlanner planner, WanJobRequest request, IEnumerable<string> prompts, IReadOnlyList<ulong> seeds)
    {
        ArgumentNullException.ThrowIfNull(planner);
        ArgumentNullException.ThrowIfNull(request);
        return [.. prompts.SelectMany(p => seeds.Select(seed => planner.Plan(request with { Prompt = p, Seed = seed })))];
    }

    /// <summary>What each metric reads from a run: per challenged step or per job.</summary>
    public static IReadOnlyList<(CalibrationMetric Metric, Func<CalibrationRun, IEnumerable<double>> Samples)> Metrics { get; } =
    [
        (new("e_v", "step", MetricScale.Error, "‖JL(v_val) − u_k‖ / ‖JL(v_val)‖ of a challenged step"), r => r.Reveal.Steps.Select(s => s.VelocityError)),
        (new("e_x", "step", MetricScale.Error, "‖x̃_(k+1)^val − x̃_(k+1)‖ / ‖x̃_(k+1)‖ of a challenged step"), r => r.Reveal.Steps.Select(s => s.StepError)),
        (new("e_v_max", "job", MetricScale.Error, "the largest e_v of a job's steps"), r => MaxOf(r.Reveal.Steps.Select(s => s.VelocityError))),
        (new("e_x_max", "job", MetricScale.Error, "the largest e_x of a job's steps"), r => MaxOf(r.Reveal.Steps.Select(s => s.StepError))),
        (new("replay", "step", MetricScale.Error, "the sampler's arithmetic on the executor's own tensors (step from its v_k, predictor from its last sample)"),
            r => r.Reveal.Steps.Select(s => Math.Max(s.ReplayError, s.LastSampleError))),
        (new("sketches", "step", MetricScale.Error, "committed s_k, u_k against the sketches of the revealed tensors"),
            r => r.Reveal.Steps.Select(s => Math.Max(s.LatentSketchError, s.VelocitySketchError))),
        (new("initial_noise", "job", MetricScale.Error, "‖x̃_0 − noise(seed)‖ / ‖noise(seed)‖"), r => r.Reveal.InitialNoiseError is { } e ? [e] : []),
        (new("psnr_db", "job", MetricScale.PsnrDb, "mean PSNR of the frames against the validator's regeneration (V2)"), r => [r.EndToEnd.MeanPsnrDb]),
        (new("ssim", "job", MetricScale.Similarity, "lowest frame SSIM against the regeneration (V2)"), r => [r.EndToEnd.MinSsim]),
        (new("phash_bits", "job", MetricScale.Error, "largest frame pHash distance from the regeneration (V2)"), r => [r.EndToEnd.MaxPHashBits]),
        (new("jl_x0", "job", MetricScale.Error, "‖JL(x0) − JL(x0_val)‖ / ‖JL(x0_val)‖ against the regeneration (V2)"), r => [r.FinalSketchError]),
    ];

    /// <summary>
    /// Runs every job by every case and checks it; <paramref name="onRun"/> sees each run as it is done. Sampler states
    /// and reveals are written under <paramref name="workFolder"/> and deleted after each run.
    /// </summary>
    public IReadOnlyList<CalibrationRun> Run(IReadOnlyList<WanJobSpec> jobs, IReadOnlyList<WanCalibrationCase> cases, string workFolder,
        Action<CalibrationRun>? onRun, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        ArgumentNullException.ThrowIfNull(cases);
        var verifier = new StepRevealVerifier(Validator, Model);
        var runs = new List<CalibrationRun>();
        for (var j = 0; j < jobs.Count; j++)
        {
            var job = jobs[j];
            var reference = Validator.Generate(job, Model, null, null, ct);
            foreach (var @case in cases)
            {
                ct.ThrowIfCancellationRequested();
                var folder = Path.Combine(workFolder, $"run-{Guid.NewGuid():N}");
                try
                {
                    var run = RunCase(verifier, @case, j, job, reference, folder, ct);
                    runs.Add(run);
                    onRun?.Invoke(run);
                }
                finally
                {
                    if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
                }
            }
        }
        return runs;
    }

    /// <summary>The samples of every metric over <paramref name="runs"/>, calibrated with <paramref name="margin"/>.</summary>
    public static IReadOnlyList<MetricCalibration> Calibrate(IReadOnlyList<CalibrationRun> runs, double margin) =>
    [
        .. Metrics.Select(m => MetricCalibration.Of(m.Metric, [.. runs.SelectMany(r => m.Samples(r).Select(v => new CalibrationSample(r.Case, r.Honest, v)))], margin)),
    ];

    /// <summary>The job with another step count, as a cheaper run of it.</summary>
    public static WanJobSpec FewerSteps(WanJobSpec spec) => spec with { NumInferenceSteps = Math.Max(1, spec.NumInferenceSteps / 2) };

    /// <summary>The job sampled with shift 5 (vLLM-Omni's default) where it asks 12, or 12 where it asks another.</summary>
    public static WanJobSpec WrongShift(WanJobSpec spec) => spec with { FlowShift = spec.FlowShift == 5 ? 12 : 5 };

    /// <summary>The job with an empty negative prompt (diffusers' and vLLM-Omni's default) or, if empty, the official one.</summary>
    public static WanJobSpec WrongNegativePrompt(WanJobSpec spec) =>
        spec with { NegativePrompt = spec.NegativePrompt.Length == 0 ? WanJobSpec.OfficialNegativePrompt : "" };

    public static WanJobSpec OtherSeed(WanJobSpec spec) => spec with { Seed = spec.Seed + 1_000_003 };

    /// <summary>Every step on the low-noise expert (boundary ratio 1): one expert loaded instead of two.</summary>
    public static WanJobSpec LowNoiseExpertOnly(WanJobSpec spec) => spec with { BoundaryRatio = 1 };

    /// <summary>The boundary moved halfway to 1, so the steps between the two run on the other expert.</summary>
    public static WanJobSpec WrongBoundary(WanJobSpec spec) => spec with { BoundaryRatio = (1 + spec.BoundaryRatio) / 2 };

    private CalibrationRun RunCase(StepRevealVerifier verifier, WanCalibrationCase @case, int index, WanJobSpec job, WanGeneration reference,
        string folder, CancellationToken ct)
    {
        var states = new StepStateStore(Path.Combine(folder, "steps"));
        var generation = @case.Executor.Generate(@case.Executes(job), Model, null, states, ct);
        var executed = generation.Trajectory;
        // A cheater presents its run as the job it was given.
        var claimed = new TrajectoryCommitment(job.JobId, executed.Jl, executed.LatentShape, executed.Records, executed.FinalHash, executed.FinalSketch);
        var path = Path.Combine(folder, "reveal.safetensors");
        RevealBundle.Write(path, claimed, states, Beacon, claimed.Steps);
        RevealVerification verification;
        using (var reveal = RevealBundle.Open(path))
            verification = verifier.Verify(job, claimed, reveal, Beacon, claimed.Steps, ct);
        var endToEnd = VideoComparison.Of(reference.Video, generation.Video, reference.Video.FrameCount, ct);
        var finalSketch = reference.Trajectory.FinalSketch;
        var stepChecks = new ValidationVerdict();
        new WanVideoValidator(Options).CheckReveal(verification, claimed.Steps, stepChecks);
        return new CalibrationRun(@case.Name, @case.Honest, index, job, verification, stepChecks, endToEnd,
            JlSketch.RelativeDistance(claimed.FinalSketch, finalSketch, finalSketch));
    }

    private static IEnumerable<double> MaxOf(IEnumerable<double> values) => values.ToArray() is { Length: > 0 } all ? [all.Max()] : [];
}

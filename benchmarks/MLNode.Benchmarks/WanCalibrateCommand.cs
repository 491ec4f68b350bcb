using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using MLNode.Engines.Dit;
using MLNode.Engines.Dit.Validation;
using MLNode.Engines.Dit.Validation.Calibration;
using MLNode.Engines.Dit.Vae;
using MLNode.Runtime.Torch;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// The video validator's decision rule calibrated on a model fixture (wan-tiny): every job of a grid of prompts × seeds
/// run by honest executors (float32 and bfloat16 on the CPU, and with --device cuda both on the GPU) and by malign ones
/// (bfloat16 on --device: other weights, fewer steps, a wrong shift, negative prompt, seed, boundary, one expert), each
/// claiming the job; the validator (float32 on the CPU) challenges every step and regenerates the job
/// (<see cref="WanCalibration"/>). Prints a RESULT line per run and per metric (distributions, exact ROC AUC, the
/// threshold at the honest maximum times --margin), then the tables of docs/wan-validation.md.
/// </summary>
static partial class WanCalibrateCommand
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static int Run(TorchRuntime runtime, string folder, Options o, ILogger log)
    {
        var device = o.String("device", "cpu");
        if (device is not ("cpu" or "cuda")) return Fail("--device is cpu or cuda");
        if (device == "cuda" && !runtime.IsCuda) return Fail("--device cuda needs a CUDA libtorch: set MLNODE_LIBTORCH to its lib folder");
        var (prompts, seeds, margin) = (o.Int("prompts", 4), o.Int("seeds", 2), o.Double("margin", 2));
        if (prompts is < 1 || prompts > WanCalibration.Prompts.Count) return Fail($"--prompts is 1 to {WanCalibration.Prompts.Count}");
        if (seeds < 1 || margin < 1) return Fail("--seeds is positive and --margin at least 1");

        var facts = WanModelFacts.Of(Path.GetFileName(Path.TrimEndingDirectorySeparator(folder)), "fixture", [], "float32",
            WanTransformerConfig.FromFile(Path.Combine(folder, "transformer", "config.json")), WanVaeConfig.FromFile(Path.Combine(folder, "vae", "config.json")));
        var request = WanCalibration.ReferenceRequest(folder);
        if (o.Values.ContainsKey("steps")) request = request with { NumInferenceSteps = o.Int("steps", 0) };
        var jobs = WanCalibration.Jobs(new WanJobPlanner(facts, new WanJobDefaults(), new WanJobLimits()), request,
            WanCalibration.Prompts.Take(prompts), [.. Enumerable.Range(0, seeds).Select(i => request.Seed!.Value + (ulong)i)]);

        using var noGrad = no_grad();
        var validator = WanPipeline.Load(folder, CPU, ScalarType.Float32, log);
        var malignDtype = o.String("malign-dtype", "bf16") switch
        {
            "bf16" => ScalarType.BFloat16,
            "fp32" => ScalarType.Float32,
            _ => (ScalarType?)null,
        };
        if (malignDtype is null) return Fail("--malign-dtype is bf16 or fp32");
        var cases = Cases(folder, validator, device == "cuda" ? runtime.Device : CPU, malignDtype.Value, log);
        Console.WriteLine($"wan-calibrate: {jobs.Count} jobs ({prompts} prompts × {seeds} seeds, {jobs[0].NumInferenceSteps} steps, {jobs[0].Width}×{jobs[0].Height}×{jobs[0].NumFrames}) " +
            $"× {cases.Count} cases; validator float32 on the CPU; malign executors {o.String("malign-dtype", "bf16")} on {device}");

        foreach (var @case in cases) Console.WriteLine($"  {@case.Name} ({(@case.Honest ? "honest" : "malign")}): {@case.Description}");

        var work = Directory.CreateTempSubdirectory("mlnode-wan-calibrate-");
        IReadOnlyList<CalibrationRun> runs;
        try
        {
            runs = new WanCalibration(validator, facts, new VideoValidationOptions()).Run(jobs, cases, work.FullName, run => Console.WriteLine($"RESULT wan-calibrate-run {JsonSerializer.Serialize(Describe(run), Json)}"), CancellationToken.None);
        }
        finally
        {
            work.Delete(recursive: true);
        }

        var calibrations = WanCalibration.Calibrate(runs, margin);
        foreach (var c in calibrations)
            Console.WriteLine($"RESULT wan-calibrate {JsonSerializer.Serialize(Describe(c, margin, device), Json)}");
        PrintMetrics(calibrations, margin);
        PrintCases(runs, cases);
        return 0;
    }

    /// <summary>
    /// Honest: the job itself in float32 and bfloat16 on the CPU and on the GPU. Malign: <paramref name="malignDtype"/> on
    /// <paramref name="device"/> (bfloat16 by default, what a GPU executor runs), cheating one way each.
    /// </summary>
    private static List<WanCalibrationCase> Cases(string folder, WanPipeline validator, Device device, ScalarType malignDtype, ILogger log)
    {
        var cases = new List<WanCalibrationCase>
        {
            WanCalibrationCase.Runs("cpu-fp32", "the validator's own numerics (same engine, same device)", validator),
            WanCalibrationCase.Runs("cpu-bf16", "projections and umT5 in bfloat16 on the CPU", WanPipeline.Load(folder, CPU, ScalarType.BFloat16, log)),
        };
        if (device.type == DeviceType.CUDA)
        {
            cases.Add(WanCalibrationCase.Runs("cuda-fp32", "float32 on the GPU (TF32 off)", WanPipeline.Load(folder, device, ScalarType.Float32, log)));
            cases.Add(WanCalibrationCase.Runs("cuda-bf16", "bfloat16 projections on the GPU: the production policy", WanPipeline.Load(folder, device, ScalarType.BFloat16, log)));
        }
        var executor = cases.Single(c => c.Name == $"{device.type.ToString().ToLowerInvariant()}-{(malignDtype == ScalarType.Float32 ? "fp32" : "bf16")}").Executor;
        WanPipeline Perturbed(double keep, double noise, long seed) => PerturbedWeights.Experts(executor, folder, malignDtype, keep, noise, seed);
        cases.Add(WanCalibrationCase.Cheats("weights-noise-1pct", "both experts' weights + 1% Gaussian noise (of each tensor's RMS)", Perturbed(1, 0.01, 1), spec => spec));
        cases.Add(WanCalibrationCase.Cheats("weights-noise-10pct", "both experts' weights + 10% Gaussian noise", Perturbed(1, 0.1, 2), spec => spec));
        cases.Add(WanCalibrationCase.Cheats("weights-random", "other weights: noise of each tensor's RMS, re-seeded", Perturbed(0, 1, 3), spec => spec));
        cases.Add(WanCalibrationCase.Cheats("fewer-steps", "half the steps", executor, WanCalibration.FewerSteps));
        cases.Add(WanCalibrationCase.Cheats("wrong-shift", "shift 5 for 12", executor, WanCalibration.WrongShift));
        cases.Add(WanCalibrationCase.Cheats("wrong-negative-prompt", "empty negative prompt", executor, WanCalibration.WrongNegativePrompt));
        cases.Add(WanCalibrationCase.Cheats("other-seed", "another seed", executor, WanCalibration.OtherSeed));
        cases.Add(WanCalibrationCase.Cheats("low-noise-expert-only", "every step on the low-noise expert", executor, WanCalibration.LowNoiseExpertOnly));
        cases.Add(WanCalibrationCase.Cheats("wrong-boundary", "boundary halfway to 1", executor, WanCalibration.WrongBoundary));
        return cases;
    }

    private static object Describe(CalibrationRun run) => new
    {
        Case = run.Case,
        run.Honest,
        Job = run.JobIndex,
        run.Job.Seed,
        Problems = run.Reveal.Problems.Count,
        V1Accepts = run.StepChecks.Accept,
        V1Fails = FailedChecks(run),
        StepsReplayed = run.Reveal.Steps.Count,
        EV = run.Reveal.Steps.Select(s => s.VelocityError),
        EX = run.Reveal.Steps.Select(s => s.StepError),
        ReplayMax = run.Reveal.Steps.Max(s => Math.Max(s.ReplayError, s.LastSampleError)),
        SketchesMax = run.Reveal.Steps.Max(s => Math.Max(s.LatentSketchError, s.VelocitySketchError)),
        InitialNoise = run.Reveal.InitialNoiseError,
        PsnrDb = run.EndToEnd.MeanPsnrDb,
        Ssim = run.EndToEnd.MinSsim,
        PhashBits = run.EndToEnd.MaxPHashBits,
        JlX0 = run.FinalSketchError,
    };

    private static object Describe(MetricCalibration c, double margin, string device) => new
    {
        Metric = c.Metric.Name,
        c.Metric.Unit,
        c.Metric.Rule,
        Device = device,
        c.Honest,
        c.Malign,
        c.Auc,
        c.Threshold,
        Margin = margin,
        c.Separates,
        c.Missed,
    };

    private static void PrintMetrics(IReadOnlyList<MetricCalibration> calibrations, double margin)
    {
        Console.WriteLine();
        Console.WriteLine($"| metric | per | honest n / min / median / p99 / max | malign n / min / median / p99 / max | AUC | τ (honest worst × {margin:0.##}) | malign passing τ |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var c in calibrations)
            Console.WriteLine($"| {c.Metric.Name} | {c.Metric.Unit} | {Spread(c.Honest)} | {Spread(c.Malign)} | {c.Auc:0.000} | {(c.Metric.Rule == "at_most" ? "≤" : "≥")} {Number(c.Threshold)} | " +
                $"{(c.Separates ? "none" : string.Join(", ", c.Missed))} |");
    }

    private static void PrintCases(IReadOnlyList<CalibrationRun> runs, IReadOnlyList<WanCalibrationCase> cases)
    {
        Console.WriteLine();
        Console.WriteLine("| case | honest | V1 rejects (every step challenged) | failing checks | max e_v | max e_x | max x̃_0 error | min PSNR dB | min SSIM | max pHash bits | max JL(x0) |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var @case in cases)
        {
            var of = runs.Where(r => r.Case == @case.Name).ToArray();
            var failing = string.Join(", ", of.SelectMany(FailedChecks).Distinct());
            Console.WriteLine($"| {@case.Name} | {(@case.Honest ? "yes" : "no")} | {of.Count(r => !r.StepChecks.Accept)}/{of.Length} | {(failing.Length == 0 ? "none" : failing)} | " +
                $"{Number(of.Max(r => r.Reveal.Steps.Max(s => s.VelocityError)))} | {Number(of.Max(r => r.Reveal.Steps.Max(s => s.StepError)))} | " +
                $"{Number(of.Max(r => r.Reveal.InitialNoiseError ?? 0))} | {of.Min(r => r.EndToEnd.MeanPsnrDb):0.0} | {Number(of.Min(r => r.EndToEnd.MinSsim))} | " +
                $"{of.Max(r => r.EndToEnd.MaxPHashBits)} | {Number(of.Max(r => r.FinalSketchError))} |");
        }
    }

    /// <summary>The V1 checks a run failed, by kind (step_{k}_e_v as step_e_v).</summary>
    private static IEnumerable<string> FailedChecks(CalibrationRun run) =>
        run.StepChecks.Checks.Where(c => !c.Pass).Select(c => StepIndex().Replace(c.Name, "step_")).Distinct();

    [System.Text.RegularExpressions.GeneratedRegex(@"^step_\d+_")]
    private static partial System.Text.RegularExpressions.Regex StepIndex();

    private static string Spread(Distribution d) => $"{d.Count} / {Number(d.Min)} / {Number(d.Median)} / {Number(d.P99)} / {Number(d.Max)}";

    /// <summary>Five significant digits: an SSIM of 0.99996 is not 1.</summary>
    private static string Number(double value) =>
        value == 0 ? "0" : Math.Abs(value) is >= 0.01 and < 1000 ? value.ToString("G5", CultureInfo.InvariantCulture) : value.ToString("0.00E+0", CultureInfo.InvariantCulture);

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"wan-calibrate: {message}");
        return 2;
    }
}

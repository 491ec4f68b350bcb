using MLNode.Engines.Dit;
using MLNode.Engines.Dit.Validation;
using MLNode.Engines.Dit.Validation.Calibration;
using MLNode.Tests;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Dit;

/// <summary>
/// The calibration's statistics (exact AUC by mid-ranks, numpy's percentiles, thresholds on each metric scale), its
/// perturbed weights, and a reduced calibration on wan-tiny: one job, two honest executors and one malign one, whose
/// e_v separates them and whose V1 verdicts at the default thresholds accept the honest and reject the cheat.
/// </summary>
public sealed class WanCalibrationTests : IDisposable
{
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("mlnode-calibration-test-");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void Auc_counts_malign_over_honest_pairs_with_ties_as_half()
    {
        Assert.Equal(1.0, RocAuc.Of([1, 2, 3], [4, 5]));
        Assert.Equal(0.0, RocAuc.Of([4, 5], [1, 2, 3]));
        Assert.Equal(0.5, RocAuc.Of([2, 2], [2, 2, 2]));
        // 2 beats 1, ties 2, loses to 3: 1.5; 4 beats all three: 3. 4.5 of 6 pairs.
        Assert.Equal(0.75, RocAuc.Of([1, 2, 3], [2, 4]));
    }

    [Fact]
    public void Auc_by_ranks_equals_the_pairwise_count()
    {
        var random = new Random(5);
        // Values on a coarse grid, so that many tie.
        var honest = Enumerable.Range(0, 57).Select(_ => (double)random.Next(20)).ToArray();
        var malign = Enumerable.Range(0, 31).Select(_ => (double)random.Next(5, 30)).ToArray();
        var pairs = malign.Sum(m => honest.Sum(h => m > h ? 1.0 : m == h ? 0.5 : 0));

        Assert.Equal(pairs / (honest.Length * malign.Length), RocAuc.Of(honest, malign), 12);
    }

    [Fact]
    public void Distribution_interpolates_percentiles_as_numpy_does()
    {
        // numpy.percentile([1, 2, 3, 4], [50, 99]) = [2.5, 3.97].
        var d = Distribution.Of([4.0, 1, 3, 2]);

        Assert.Equal((4, 1.0, 2.5, 4.0), (d.Count, d.Min, d.Median, d.Max));
        Assert.Equal(3.97, d.P99, 12);
        Assert.Equal(new Distribution(1, 7, 7, 7, 7), Distribution.Of([7.0]));
    }

    [Fact]
    public void Thresholds_scale_the_honest_worst_error_on_each_metric_scale()
    {
        CalibrationSample[] Samples(double[] honest, double[] malign) =>
            [.. honest.Select(v => new CalibrationSample("h", true, v)), .. malign.Select((v, i) => new CalibrationSample($"m{i}", false, v))];

        var error = MetricCalibration.Of(new("e", "step", MetricScale.Error, ""), Samples([0.001, 0.003], [0.005, 0.01]), 2);
        var psnr = MetricCalibration.Of(new("p", "job", MetricScale.PsnrDb, ""), Samples([50, 40], [35, 30]), 2);
        var ssim = MetricCalibration.Of(new("s", "job", MetricScale.Similarity, ""), Samples([0.999, 0.99], [0.95]), 2);

        Assert.Equal((0.006, 1.0), (error.Threshold, error.Auc));
        Assert.Equal(["m0 (1/1)"], error.Missed);
        // Twice the RMS error is 20·log10(2) dB less.
        Assert.Equal(40 - 20 * Math.Log10(2), psnr.Threshold, 9);
        Assert.Equal(["m0 (1/1)"], psnr.Missed);
        Assert.Equal(0.98, ssim.Threshold, 12);
        Assert.True(ssim.Separates);
    }

    [Fact]
    public void Perturbed_weights_are_the_checkpoint_plus_reproducible_noise_of_the_asked_size()
    {
        var folder = Fixtures.Path("wan", "wan-tiny", WanTiny.HighNoiseExpert);
        var checkpoint = Parameters(WanTiny.Expert(WanTiny.HighNoiseExpert, WanTiny.Numerics.Float32));

        var unchanged = Parameters(WanTiny.OnOwnThread(() => PerturbedWeights.Expert(folder, CPU, ScalarType.Float32, 1, 0, 9), "expert"));
        var noisy = Parameters(WanTiny.OnOwnThread(() => PerturbedWeights.Expert(folder, CPU, ScalarType.Float32, 1, 0.1, 9), "expert"));
        var again = Parameters(WanTiny.OnOwnThread(() => PerturbedWeights.Expert(folder, CPU, ScalarType.Float32, 1, 0.1, 9), "expert"));

        var measured = 0;
        foreach (var (name, weight) in checkpoint)
        {
            Assert.True(weight.equal(unchanged[name]).all().item<bool>(), name);
            Assert.True(noisy[name].equal(again[name]).all().item<bool>(), name);
            // The noise's RMS is 10% of the tensor's; over n ≥ 1,000 values its sample RMS has a relative spread of
            // 1/√(2n) ≤ 2.2%, so ±10% of it is more than 4σ.
            if (weight.numel() < 1000) continue;
            var ratio = ((noisy[name] - weight).square().mean().sqrt() / weight.square().mean().sqrt()).item<float>();
            Assert.InRange(ratio, 0.09, 0.11);
            measured++;
        }
        TestContext.Current.TestOutputHelper?.WriteLine($"{measured} of {checkpoint.Count} tensors large enough to measure the noise's size");
        Assert.True(measured >= 5, $"only {measured} tensors measured");
    }

    [Fact]
    public void A_reduced_calibration_separates_honest_from_malign_steps_on_e_v()
    {
        // One job (the fixture's, 4 steps), the validator's own numerics and bfloat16 projections as honest executors,
        // and bfloat16 with 10% noise on the experts' weights as the cheat. Measured: bfloat16's e_v is ≈ 3e-3 at every
        // step, the cheat's ≈ 0.14; the threshold at twice the honest worst sits a factor of ~20 below the cheat.
        var validator = WanTiny.CpuPipeline(WanTiny.Numerics.Float32);
        var bf16 = WanTiny.CpuPipeline(WanTiny.Numerics.BFloat16);
        var noisy = WanTiny.OnOwnThread(() => PerturbedWeights.Experts(bf16, Fixtures.Path("wan", "wan-tiny"), ScalarType.BFloat16, 1, 0.1, 2), "noisy experts");
        WanCalibrationCase[] cases =
        [
            WanCalibrationCase.Runs("cpu-fp32", "the validator's numerics", validator),
            WanCalibrationCase.Runs("cpu-bf16", "bfloat16 projections", bf16),
            WanCalibrationCase.Cheats("weights-noise-10pct", "10% noise on the experts' weights", noisy, spec => spec),
        ];

        var runs = new WanCalibration(validator, WanTiny.Facts(), new VideoValidationOptions()).Run([WanTiny.ReferenceSpec()], cases, _folder.FullName, null, Ct);
        var ev = WanCalibration.Calibrate(runs, margin: 2).Single(c => c.Metric.Name == "e_v");

        TestContext.Current.TestOutputHelper?.WriteLine($"e_v honest {ev.Honest}, malign {ev.Malign}, τ {ev.Threshold:E3}, AUC {ev.Auc}");
        Assert.Equal((8, 4), (ev.Honest.Count, ev.Malign.Count));
        Assert.True(ev.Honest.Max < ev.Threshold && ev.Threshold < ev.Malign.Min, $"honest ≤ {ev.Honest.Max:E3}, τ {ev.Threshold:E3}, malign ≥ {ev.Malign.Min:E3}");
        Assert.Equal(1.0, ev.Auc);
        Assert.True(ev.Separates);
        // The default thresholds decide the same way: every honest run passes V1's step checks, the cheat fails on e_v.
        Assert.All(runs.Where(r => r.Honest), r => Assert.True(r.StepChecks.Accept, $"{r.Case}: {string.Join(", ", r.StepChecks.Checks.Where(c => !c.Pass).Select(c => c.Name))}"));
        var cheat = Assert.Single(runs, r => !r.Honest);
        Assert.Equal(["step_0_e_v", "step_1_e_v", "step_2_e_v", "step_3_e_v"], cheat.StepChecks.Checks.Where(c => !c.Pass && c.Name.EndsWith("_e_v", StringComparison.Ordinal)).Select(c => c.Name));
    }

    public void Dispose() => _folder.Delete(recursive: true);

    private static Dictionary<string, Tensor> Parameters(WanTransformer3DModel model) =>
        model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
}

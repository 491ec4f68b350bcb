namespace MLNode.Engines.Dit.Validation.Calibration;

/// <summary>How a metric's values are held against a threshold, and what "worse" means for it.</summary>
public enum MetricScale
{
    /// <summary>An error or distance ≥ 0 that must stay at most τ.</summary>
    Error,

    /// <summary>A PSNR in dB that must stay at least τ; its error is the relative RMS 10^(−PSNR/20).</summary>
    PsnrDb,

    /// <summary>A similarity ≤ 1 (SSIM) that must stay at least τ; its error is 1 − value.</summary>
    Similarity,
}

/// <summary>
/// One number the validator computes, calibrated from honest and malign samples. Every scale maps its values to an
/// error ≥ 0 that grows as the runs disagree (<see cref="Error"/>), so that one rule serves all: the threshold is the
/// honest maximum error times a margin, and a sample passes when its error is at most that.
/// </summary>
/// <param name="Unit">What one sample is: <c>step</c> (one challenged step) or <c>job</c> (one job, end to end).</param>
public sealed record CalibrationMetric(string Name, string Unit, MetricScale Scale, string Description)
{
    public string Rule => Scale == MetricScale.Error ? CheckRule.AtMost : CheckRule.AtLeast;

    public double Error(double value) => Scale switch
    {
        MetricScale.PsnrDb => Math.Pow(10, -value / 20),
        MetricScale.Similarity => 1 - value,
        _ => value,
    };

    public double FromError(double error) => Scale switch
    {
        MetricScale.PsnrDb => -20 * Math.Log10(error),
        MetricScale.Similarity => 1 - error,
        _ => error,
    };
}

/// <summary>One sample of a metric: the case it came from and whether that case is honest.</summary>
public sealed record CalibrationSample(string Case, bool Honest, double Value);

/// <summary>
/// A metric's calibration: the honest and malign distributions (in the metric's own units), the ROC AUC of its error
/// separating malign from honest samples (<see cref="RocAuc"/>), the threshold τ at the honest maximum error times the
/// margin, and the malign cases with a sample that τ lets pass (as "case (passing/samples)").
/// </summary>
public sealed record MetricCalibration(CalibrationMetric Metric, Distribution Honest, Distribution Malign, double Auc, double Threshold, IReadOnlyList<string> Missed)
{
    /// <summary>Every malign sample fails τ (every honest one passes it by construction).</summary>
    public bool Separates => Missed.Count == 0;

    public static MetricCalibration Of(CalibrationMetric metric, IReadOnlyCollection<CalibrationSample> samples, double margin)
    {
        ArgumentNullException.ThrowIfNull(metric);
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentOutOfRangeException.ThrowIfLessThan(margin, 1.0);
        var honest = samples.Where(s => s.Honest).ToArray();
        var malign = samples.Where(s => !s.Honest).ToArray();
        var maxError = honest.Max(s => metric.Error(s.Value)) * margin;
        var missed = malign.GroupBy(s => s.Case)
            .Select(g => (Case: g.Key, Passing: g.Count(s => metric.Error(s.Value) <= maxError), Count: g.Count()))
            .Where(c => c.Passing > 0)
            .Select(c => $"{c.Case} ({c.Passing}/{c.Count})")
            .ToArray();
        return new MetricCalibration(metric, Distribution.Of([.. honest.Select(s => s.Value)]), Distribution.Of([.. malign.Select(s => s.Value)]),
            RocAuc.Of([.. honest.Select(s => metric.Error(s.Value))], [.. malign.Select(s => metric.Error(s.Value))]),
            metric.FromError(maxError), missed);
    }
}

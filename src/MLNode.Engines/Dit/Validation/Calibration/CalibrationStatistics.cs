namespace MLNode.Engines.Dit.Validation.Calibration;

/// <summary>
/// A sample's spread: its size, minimum, median, 99th percentile and maximum. Percentiles interpolate linearly between
/// order statistics (numpy's default: the p-quantile of n sorted values sits at rank p·(n − 1)).
/// </summary>
public sealed record Distribution(int Count, double Min, double Median, double P99, double Max)
{
    public static Distribution Of(IReadOnlyCollection<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0) throw new ArgumentException("a distribution of no values", nameof(values));
        if (values.Any(double.IsNaN)) throw new ArgumentException("a distribution of NaN", nameof(values));
        var sorted = values.Order().ToArray();
        return new Distribution(sorted.Length, sorted[0], Quantile(sorted, 0.5), Quantile(sorted, 0.99), sorted[^1]);
    }

    private static double Quantile(double[] sorted, double p)
    {
        var rank = p * (sorted.Length - 1);
        var below = (int)Math.Floor(rank);
        var above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + (rank - below) * (sorted[above] - sorted[below]);
    }
}

/// <summary>
/// The area under the ROC curve of a score that should be higher for malign samples than for honest ones: the
/// probability that a malign sample scores above an honest one, ties counting one half, i.e. the Mann–Whitney U of the
/// malign sample over n_honest·n_malign. Computed exactly from mid-ranks of the pooled sample, O(n log n).
/// </summary>
public static class RocAuc
{
    public static double Of(IReadOnlyCollection<double> honest, IReadOnlyCollection<double> malign)
    {
        ArgumentNullException.ThrowIfNull(honest);
        ArgumentNullException.ThrowIfNull(malign);
        if (honest.Count == 0 || malign.Count == 0) throw new ArgumentException("an AUC needs honest and malign samples");
        if (honest.Concat(malign).Any(double.IsNaN)) throw new ArgumentException("an AUC of NaN scores");
        var pooled = honest.Select(v => (Value: v, Malign: false)).Concat(malign.Select(v => (Value: v, Malign: true))).OrderBy(s => s.Value).ToArray();
        double malignRankSum = 0;
        for (var first = 0; first < pooled.Length;)
        {
            var end = first;
            while (end < pooled.Length && pooled[end].Value == pooled[first].Value) end++;
            // Ranks first + 1 … end share their mean.
            var midRank = (first + 1 + end) / 2.0;
            for (var i = first; i < end; i++)
                if (pooled[i].Malign) malignRankSum += midRank;
            first = end;
        }
        double m = malign.Count, h = honest.Count;
        return (malignRankSum - m * (m + 1) / 2) / (m * h);
    }
}

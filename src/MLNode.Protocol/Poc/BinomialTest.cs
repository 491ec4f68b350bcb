namespace MLNode.Protocol.Poc;

/// <summary>
/// The one-sided binomial test of the PoC fraud check (<c>scipy.stats.binomtest(k, n, p, alternative="greater")</c>).
/// </summary>
public static class BinomialTest
{
    /// <summary>
    /// P[X ≥ <paramref name="successes"/>] for X ~ Binomial(<paramref name="trials"/>, <paramref name="p"/>).
    /// </summary>
    /// <remarks>
    /// Sums every term of the tail in log space (log-sum-exp), each term from its neighbour by the exact
    /// ratio (n−i)/(i+1)·p/(1−p): no overflow or underflow for n in the hundreds of thousands; against 60-digit
    /// references the relative error stays below 1e-10 at n = 100000 (a p-value of 1e-93 included) and a few
    /// 1e-15 at n = 200. Tails below the double range come out as 0.
    /// </remarks>
    public static double UpperTail(int successes, int trials, double p)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(trials);
        ArgumentOutOfRangeException.ThrowIfNegative(successes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(successes, trials);
        if (double.IsNaN(p) || p < 0 || p > 1)
            throw new ArgumentOutOfRangeException(nameof(p), p, "must be a probability");

        if (successes == 0 || p == 1)
            return 1;
        if (p == 0)
            return 0;

        var logOdds = Math.Log(p) - Log1P(-p);
        var logTerm = LogBinomialCoefficient(trials, successes) + successes * Math.Log(p) + (trials - successes) * Log1P(-p);
        var maxLog = logTerm;
        var scaledSum = 1.0; // Σ exp(logTerm_i − maxLog)
        for (var i = successes; i < trials; i++)
        {
            logTerm += Math.Log((double)(trials - i) / (i + 1)) + logOdds;
            if (logTerm > maxLog)
            {
                scaledSum = scaledSum * Math.Exp(maxLog - logTerm) + 1;
                maxLog = logTerm;
            }
            else
            {
                scaledSum += Math.Exp(logTerm - maxLog);
            }
        }
        return Math.Min(1, Math.Exp(maxLog + Math.Log(scaledSum)));
    }

    /// <summary>ln C(n, k) as Σ ln((n−k+i)/i), i = 1..min(k, n−k): exact ratios, one rounding per term.</summary>
    private static double LogBinomialCoefficient(int n, int k)
    {
        k = Math.Min(k, n - k);
        var sum = 0.0;
        for (var i = 1; i <= k; i++)
            sum += Math.Log((double)(n - k + i) / i);
        return sum;
    }

    // ln(1+x) without the cancellation of Math.Log(1 + x) for small x (Goldberg's correction).
    private static double Log1P(double x)
    {
        var u = 1 + x;
        return u == 1 ? x : Math.Log(u) * x / (u - 1);
    }
}

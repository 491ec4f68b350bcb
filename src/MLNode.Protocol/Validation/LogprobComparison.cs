using MLNode.Protocol.OpenAi;

namespace MLNode.Protocol.Validation;

public enum LogprobComparisonOutcome
{
    /// <summary>Every position was compared; the similarity is the score.</summary>
    Compared,

    /// <summary>The validator returned fewer positions than the executor.</summary>
    ValidatorShorter,

    /// <summary>A position's emitted token differs (the replay did not follow the executor).</summary>
    TokenMismatch,

    /// <summary>A position of either side has no top logprobs: dapi cannot compute a distance and scores 0.</summary>
    EmptyTopLogprobs,
}

/// <summary>
/// What a validator reports for one inference. <see cref="Position"/> locates a mismatch or an empty position.
/// </summary>
public sealed record LogprobComparisonResult(LogprobComparisonOutcome Outcome, double Similarity, int? Position = null)
{
    /// <summary>The chain's rule: VALIDATED iff the value is strictly above the model's validation_threshold.</summary>
    public bool Passes(double validationThreshold) => Similarity > validationThreshold;
}

/// <summary>
/// dapi's <c>CompareLogits</c> (<c>decentralized-api/internal/validation/inference_validation.go</c>): a relative
/// distance between the executor's and the validator's top logprobs, normalised per position and per top entry.
/// The arithmetic follows the Go order so the value sent on chain is the same double.
/// </summary>
public static class LogprobComparison
{
    /// <summary>Short completions are judged as if they had this many positions, so a few tokens weigh little.</summary>
    public const int MinNormalisingPositions = 100;

    /// <summary>The gap assumed below a position's only executor logprob when extrapolating a fill value.</summary>
    public const double SingleLogprobGap = 100.0;

    private const double DenominatorEpsilon = 1e-6;

    public static LogprobComparisonResult Compare(IReadOnlyList<ChatCompletionLogprob> executor, IReadOnlyList<ChatCompletionLogprob> validator)
    {
        // dapi only logs a longer validator; positions past the executor's are ignored.
        if (validator.Count < executor.Count)
            return new LogprobComparisonResult(LogprobComparisonOutcome.ValidatorShorter, 0);
        for (var i = 0; i < executor.Count; i++)
        {
            if (executor[i].Token != validator[i].Token)
                return new LogprobComparisonResult(LogprobComparisonOutcome.TokenMismatch, 0, i);
        }
        if (executor.Count == 0)
            return new LogprobComparisonResult(LogprobComparisonOutcome.Compared, 1);

        var distance = 0.0;
        for (var i = 0; i < executor.Count; i++)
        {
            if (executor[i].TopLogprobs.Count == 0 || validator[i].TopLogprobs.Count == 0)
                return new LogprobComparisonResult(LogprobComparisonOutcome.EmptyTopLogprobs, 0, i);
            distance += PositionDistance(executor[i].TopLogprobs, validator[i].TopLogprobs);
        }
        distance /= Math.Max(MinNormalisingPositions, executor.Count) * executor[0].TopLogprobs.Count;

        var similarity = 1 - distance;
        return new LogprobComparisonResult(LogprobComparisonOutcome.Compared, double.IsFinite(similarity) && similarity > 0 ? similarity : 0);
    }

    /// <summary>
    /// Σ over the validator's top entries of |v − o| / (ε + |v| + |o|) / 2. A token outside the executor's top list
    /// is given a logprob one step below its two smallest (the gap between them extrapolated); NaN terms are skipped.
    /// </summary>
    private static double PositionDistance(IReadOnlyList<TopLogprob> executor, IReadOnlyList<TopLogprob> validator)
    {
        var executorLogprobs = new Dictionary<string, double>(executor.Count);
        foreach (var top in executor)
            executorLogprobs[top.Token] = top.Logprob;
        var ascending = executorLogprobs.Values.Order().ToArray();
        var smallest = ascending[0];
        var secondSmallest = ascending.Length >= 2 ? ascending[1] : smallest - SingleLogprobGap;
        var fill = smallest - (secondSmallest - smallest);

        var distance = 0.0;
        foreach (var top in validator)
        {
            var original = executorLogprobs.GetValueOrDefault(top.Token, fill);
            var denominator = DenominatorEpsilon + Math.Abs(top.Logprob) + Math.Abs(original);
            if (double.IsNaN(denominator) || denominator == 0)
                continue;
            var term = Math.Abs(top.Logprob - original) / denominator / 2.0;
            if (!double.IsNaN(term))
                distance += term;
        }
        return distance;
    }
}

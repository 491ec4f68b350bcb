using MLNode.Protocol.OpenAi;
using MLNode.Protocol.Validation;
using static MLNode.Protocol.Tests.Validation.ValidationFixtures;

namespace MLNode.Protocol.Tests.Validation;

public class LogprobComparisonTests
{
    // Genesis validation_threshold of Qwen/QwQ-32B and Qwen/Qwen2.5-7B-Instruct.
    private const double GenesisThreshold = 0.98;

    [Fact]
    public void HonestPair_IsIdenticalAndScoresOne()
    {
        // The recorded validator reproduced every logprob of the executor bit for bit (same FP8 model and GPU kind),
        // so every term is 0. python3 over the spec formula gives 1.0 as well.
        var result = LogprobComparison.Compare(Content(HonestExecutor), Content(HonestValidator));

        Assert.Equal(LogprobComparisonOutcome.Compared, result.Outcome);
        Assert.Equal(1.0, result.Similarity);
        Assert.True(result.Passes(GenesisThreshold));
    }

    [Fact]
    public void QuantisedPair_ScoresBelowTheGenesisThreshold()
    {
        // INT4 (AWQ) executor replayed on FP8: same 100 tokens, different logprobs. 0.9668894246685018 is what
        // python3 computes from the spec formula over the same JSON (float64, the same summation order).
        var result = LogprobComparison.Compare(Content(Int4Executor), Content(Fp8Validator));

        Assert.Equal(LogprobComparisonOutcome.Compared, result.Outcome);
        Assert.Equal(0.9668894246685018, result.Similarity);
        Assert.False(result.Passes(GenesisThreshold));
    }

    [Fact]
    public void IdenticalResponses_ScoreOne()
    {
        var content = Content(Int4Executor);

        Assert.Equal(1.0, LogprobComparison.Compare(content, content).Similarity);
    }

    [Fact]
    public void TokenMismatch_ScoresZeroAtItsPosition()
    {
        var executor = Content(HonestExecutor);
        var validator = executor.ToList();
        validator[37] = validator[37] with { Token = "x" };

        Assert.Equal(new LogprobComparisonResult(LogprobComparisonOutcome.TokenMismatch, 0, 37), LogprobComparison.Compare(executor, validator));
    }

    [Fact]
    public void ShorterValidatorScoresZero_LongerIsComparedOnTheExecutorsPositions()
    {
        var executor = Content(Int4Executor);
        var validator = Content(Fp8Validator);

        Assert.Equal(new LogprobComparisonResult(LogprobComparisonOutcome.ValidatorShorter, 0), LogprobComparison.Compare(executor, validator.Take(99).ToList()));
        Assert.Equal(LogprobComparison.Compare(executor.Take(99).ToList(), validator.Take(99).ToList()).Similarity,
            LogprobComparison.Compare(executor.Take(99).ToList(), validator).Similarity);
    }

    [Fact]
    public void EmptyExecutor_ScoresOne()
    {
        Assert.Equal(1.0, LogprobComparison.Compare([], Content(HonestValidator)).Similarity);
    }

    [Fact]
    public void EmptyTopLogprobs_ScoresZero()
    {
        var executor = Content(HonestExecutor).ToList();
        executor[5] = executor[5] with { TopLogprobs = [] };

        Assert.Equal(new LogprobComparisonResult(LogprobComparisonOutcome.EmptyTopLogprobs, 0, 5), LogprobComparison.Compare(executor, Content(HonestValidator)));
    }

    [Fact]
    public void MissingToken_IsComparedWithTheExtrapolatedFill()
    {
        // Executor top: a −1, b −3 ⇒ fill = −3 − (−1 − (−3)) = −5. Validator top: a −1 (0), c −4 ⇒ |−4+5|/(1e-6+9)/2.
        // One position of K = 2 entries, normalised by max(100, 1)·2.
        var executor = Position("a", ("a", -1), ("b", -3));
        var validator = Position("a", ("a", -1), ("c", -4));

        var expected = 1 - (1 / (1e-6 + 9) / 2) / (100 * 2);
        Assert.Equal(expected, LogprobComparison.Compare([executor], [validator]).Similarity, 1e-15);
    }

    [Fact]
    public void SingleExecutorLogprob_ExtrapolatesAHundredBelow()
    {
        // Only a −2 ⇒ m2 = −102, fill = −2 − (−102 − (−2)) = 98: the Go code's sign, kept as it is.
        var executor = Position("a", ("a", -2));
        var validator = Position("a", ("c", -7));

        var expected = 1 - (105 / (1e-6 + 7 + 98) / 2) / 100;
        Assert.Equal(expected, LogprobComparison.Compare([executor], [validator]).Similarity, 1e-15);
    }

    [Fact]
    public void NaNTerms_AreSkippedAndFarOffLogprobsClampAtZero()
    {
        var executor = Position("a", ("a", -1), ("b", -2));
        var withNaN = Position("a", ("a", double.NaN), ("b", -2));
        Assert.Equal(1.0, LogprobComparison.Compare([executor], [withNaN]).Similarity);

        // Three terms of ≈ ½ per position against K = 1 (the executor's list length) give D ≈ 1.5: 1 − D clamps to 0.
        var far = Enumerable.Repeat(Position("a", ("a", -1e-3)), 100).ToList();
        var farther = Enumerable.Repeat(Position("a", ("a", -1e6), ("b", -1e6), ("c", -1e6)), 100).ToList();
        Assert.Equal(0.0, LogprobComparison.Compare(far, farther).Similarity);
    }

    private static ChatCompletionLogprob Position(string token, params (string Token, double Logprob)[] top) =>
        new(token, top[0].Logprob, null, [.. top.Select(t => new TopLogprob(t.Token, t.Logprob, null))]);
}

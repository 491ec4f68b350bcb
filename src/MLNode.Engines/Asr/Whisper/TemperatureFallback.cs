namespace MLNode.Engines.Asr.Whisper;

/// <summary>
/// openai-whisper's quality checks on a decoded window and its answer to a failed one: decode again at the next
/// temperature of the ladder, while the text is too repetitive (zlib compression ratio above 2.4) or too unlikely
/// (average logprob below −1) — unless it is silence (no-speech probability above 0.6 with that low average
/// logprob), which no temperature would improve.
/// </summary>
public static class TemperatureFallback
{
    public const double CompressionRatioThreshold = 2.4;
    public const double LogprobThreshold = -1.0;
    public const double NoSpeechThreshold = 0.6;
    public const double Increment = 0.2;

    /// <summary>openai's ladder: <paramref name="first"/>, then steps of 0.2 up to 1.0 (0, 0.2, … 1.0 from greedy).</summary>
    public static IReadOnlyList<double> Ladder(double first)
    {
        var ladder = new List<double>();
        // numpy's arange(first, 1.0 + 1e-6, 0.2), rounded so that temperatures read 0.6, not 0.6000000000000001.
        for (var i = 0; first + i * Increment <= 1.0 + 1e-6; i++) ladder.Add(Math.Round(first + i * Increment, 10));
        return ladder.Count > 0 ? ladder : [first];
    }

    public static bool IsSilence(double avgLogprob, double? noSpeechProb) =>
        noSpeechProb > NoSpeechThreshold && avgLogprob < LogprobThreshold;

    public static bool NeedsFallback(double avgLogprob, double compressionRatio, double? noSpeechProb) =>
        (compressionRatio > CompressionRatioThreshold || avgLogprob < LogprobThreshold) && !IsSilence(avgLogprob, noSpeechProb);

    /// <summary>
    /// openai's average logprob of a window: the sum over its tokens and the end token (when it ended with one) of
    /// the logprob under the rule-masked distribution at temperature 1, divided by the token count plus one.
    /// </summary>
    public static double AverageLogprob(IReadOnlyList<double> logprobs, bool endedWithEndToken) =>
        logprobs.Sum() / (logprobs.Count - (endedWithEndToken ? 1 : 0) + 1);
}

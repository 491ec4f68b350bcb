namespace MLNode.Engines.Asr.Whisper;

/// <summary>
/// Which tokens openai-whisper's <c>ApplyTimestampRules</c> (and transformers' <c>WhisperTimeStampLogitsProcessor</c>)
/// still allow at the next step, as three bounds over the vocabulary: text tokens below <see cref="TextBelow"/> are
/// masked, timestamps below <see cref="TimestampFloor"/>, and every id from <see cref="TimestampCeiling"/> on.
/// &lt;|notimestamps|&gt; is always masked in timestamp mode, and the "timestamps are likelier than any text" rule needs
/// the logits: both are applied by <see cref="WhisperLogitRules"/>.
/// </summary>
public readonly record struct TimestampConstraint(int TextBelow, int TimestampFloor, int TimestampCeiling);

/// <summary>The state machine of timestamp decoding, from the tokens sampled so far in one window. Pure: no model, no tensors.</summary>
public sealed class TimestampRules(int endOfText, int timestampBegin, int vocabularySize, int? maxInitialTimestampIndex)
{
    public int TimestampBegin => timestampBegin;

    /// <param name="sampled">tokens generated so far after the prompt (none at the first step).</param>
    public TimestampConstraint Next(IReadOnlyList<int> sampled)
    {
        if (sampled.Count == 0)
        {
            // The first token is a timestamp, at most max_initial_timestamp_index steps after <|0.00|>.
            var ceiling = maxInitialTimestampIndex is { } index ? Math.Min(vocabularySize, timestampBegin + index + 1) : vocabularySize;
            return new TimestampConstraint(timestampBegin, timestampBegin, ceiling);
        }
        var lastWasTimestamp = sampled[^1] >= timestampBegin;
        var penultimateWasTimestamp = sampled.Count < 2 || sampled[^2] >= timestampBegin;
        var textBelow = 0;
        var timestampCeiling = vocabularySize;
        if (lastWasTimestamp)
        {
            // After a pair of timestamps (or the opening one) comes text or the end. After text, a timestamp closes
            // the segment: next is the timestamp that opens the following segment, or the end.
            if (penultimateWasTimestamp) timestampCeiling = timestampBegin;
            else textBelow = endOfText;
        }
        // Timestamps never decrease and segments have non-zero length: the timestamp that opens a segment may repeat
        // the one that closed the last, any other must move past the last one.
        var lastTimestamp = LastTimestamp(sampled);
        var timestampFloor = lastTimestamp is not { } last ? timestampBegin
            : lastWasTimestamp && !penultimateWasTimestamp ? last
            : last + 1;
        return new TimestampConstraint(textBelow, timestampFloor, timestampCeiling);
    }

    private int? LastTimestamp(IReadOnlyList<int> sampled)
    {
        for (var i = sampled.Count - 1; i >= 0; i--)
            if (sampled[i] >= timestampBegin) return sampled[i];
        return null;
    }
}

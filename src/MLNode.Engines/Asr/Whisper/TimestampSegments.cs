namespace MLNode.Engines.Asr.Whisper;

/// <summary>
/// Segments of a window decoded with timestamps, as openai-whisper's <c>transcribe</c> cuts them: each pair of
/// consecutive timestamp tokens closes one segment and opens the next; a window without such a pair is one segment
/// from its start to its last timestamp (or its end). Windows here are decoded independently rather than re-decoded
/// from the last complete segment, so text after the last pair becomes a segment that runs to the window's end
/// instead of being dropped. Times are seconds from the start of the audio, at most the window's end; segments
/// without text are left out.
/// </summary>
public static class TimestampSegments
{
    /// <param name="tokens">the window's tokens without the end token.</param>
    /// <param name="decode">text of tokens, control and timestamp tokens dropped.</param>
    public static IReadOnlyList<SpeechSegment> Split(IReadOnlyList<int> tokens, int timestampBegin, AudioWindow window, Func<IEnumerable<int>, string> decode)
    {
        bool IsTimestamp(int i) => tokens[i] >= timestampBegin;
        double Time(int token) => Math.Min(window.EndSeconds, window.StartSeconds + (token - timestampBegin) * WhisperSpecialTokens.SecondsPerTimestamp);
        double Start(int i) => IsTimestamp(i) ? Time(tokens[i]) : window.StartSeconds;

        var segments = new List<SpeechSegment>();
        void Add(double start, double end, int from, int to)
        {
            var slice = tokens.Skip(from).Take(to - from).ToArray();
            var text = decode(slice);
            if (text.Trim().Length > 0) segments.Add(new SpeechSegment(start, end, text, slice));
        }

        var boundaries = Enumerable.Range(1, Math.Max(0, tokens.Count - 1)).Where(i => IsTimestamp(i - 1) && IsTimestamp(i)).ToList();
        if (boundaries.Count == 0)
        {
            var last = Enumerable.Range(0, tokens.Count).Where(IsTimestamp).Select(i => tokens[i]).DefaultIfEmpty(timestampBegin).Last();
            Add(window.StartSeconds, last == timestampBegin ? window.EndSeconds : Time(last), 0, tokens.Count);
            return segments;
        }
        var from = 0;
        foreach (var to in boundaries)
        {
            Add(Start(from), Time(tokens[to - 1]), from, to);
            from = to;
        }
        if (from < tokens.Count)
        {
            // Text closed by one timestamp ends there; text left open runs to the end of the window.
            var closed = tokens.Count - from >= 2 && IsTimestamp(tokens.Count - 1);
            Add(Start(from), closed ? Time(tokens[^1]) : window.EndSeconds, from, tokens.Count);
        }
        return segments;
    }
}

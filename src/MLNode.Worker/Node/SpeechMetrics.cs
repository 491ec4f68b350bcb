using MLNode.Engines.Asr;
using Prometheus;

namespace MLNode.Worker.Node;

/// <summary>
/// Speech-to-text Prometheus metrics. Overall RTFx over any period is
/// <c>rate(mlnode_speech_audio_seconds_total) / rate(mlnode_speech_processing_seconds_total)</c>, as the Open ASR
/// Leaderboard defines it (total audio over total processing time); the histogram shows the spread per request.
/// </summary>
public sealed class SpeechMetrics
{
    private static readonly Counter Requests = Metrics.CreateCounter("mlnode_speech_requests_total",
        "Speech-to-text requests by task (transcribe, translate) and outcome (completed, rejected, failed).", "task", "outcome");
    private static readonly Counter AudioSeconds = Metrics.CreateCounter("mlnode_speech_audio_seconds_total",
        "Seconds of canonical audio in completed requests.", "task");
    private static readonly Counter ProcessingSeconds = Metrics.CreateCounter("mlnode_speech_processing_seconds_total",
        "Wall time of completed requests from decoding the upload to the last token.", "task");
    private static readonly Histogram Rtfx = Metrics.CreateHistogram("mlnode_speech_rtfx",
        "Real-time factor of each completed request: audio seconds per processing second.",
        new HistogramConfiguration { LabelNames = ["task"], Buckets = Histogram.ExponentialBuckets(0.5, 2, 14) });

    public void Completed(SpeechTask task, double audioSeconds, TimeSpan processing)
    {
        var label = Label(task);
        Requests.WithLabels(label, "completed").Inc();
        AudioSeconds.WithLabels(label).Inc(audioSeconds);
        ProcessingSeconds.WithLabels(label).Inc(processing.TotalSeconds);
        if (processing > TimeSpan.Zero) Rtfx.WithLabels(label).Observe(audioSeconds / processing.TotalSeconds);
    }

    /// <summary>A request answered with a 4xx or 5xx before or instead of decoding.</summary>
    public void Rejected(SpeechTask task) => Requests.WithLabels(Label(task), "rejected").Inc();

    /// <summary>A request that ended in an exception (a fault, or the client going away).</summary>
    public void Failed(SpeechTask task) => Requests.WithLabels(Label(task), "failed").Inc();

    private static string Label(SpeechTask task) => task == SpeechTask.Translate ? "translate" : "transcribe";
}

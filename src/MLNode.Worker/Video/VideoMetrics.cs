using MLNode.Worker.Video;
using Prometheus;

namespace MLNode.Worker.Node;

/// <summary>Text-to-video Prometheus metrics: jobs by final state, denoising steps, and seconds per step.</summary>
public sealed class VideoMetrics
{
    private static readonly Counter Jobs = Metrics.CreateCounter("mlnode_video_jobs_total",
        "Text-to-video jobs by the state they reached (queued, completed, failed, cancelled).", "state");
    private static readonly Gauge Queued = Metrics.CreateGauge("mlnode_video_jobs_waiting", "Text-to-video jobs queued behind the running one.");
    private static readonly Counter Steps = Metrics.CreateCounter("mlnode_video_steps_total", "Denoising steps run.");
    private static readonly Histogram StepSeconds = Metrics.CreateHistogram("mlnode_video_step_seconds",
        "Wall time of one denoising step (both CFG branches).", new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.01, 2, 16) });

    public void Reached(VideoJobStatus status) => Jobs.WithLabels(status switch
    {
        VideoJobStatus.Queued => "queued",
        VideoJobStatus.Completed => "completed",
        VideoJobStatus.Failed => "failed",
        VideoJobStatus.Cancelled => "cancelled",
        _ => "in_progress",
    }).Inc();

    public void Waiting(int jobs) => Queued.Set(jobs);

    public void Step(TimeSpan seconds)
    {
        Steps.Inc();
        StepSeconds.Observe(seconds.TotalSeconds);
    }
}

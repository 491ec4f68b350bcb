using Prometheus;

namespace MLNode.Worker.Poc;

/// <summary>Prometheus metrics of PoC v2: generation throughput, callback delivery and /generate jobs.</summary>
public sealed class PocMetrics
{
    private static readonly Counter Nonces = Metrics.CreateCounter("mlnode_poc_nonces_total",
        "Nonces computed by continuous generation.");
    private static readonly Gauge Rate = Metrics.CreateGauge("mlnode_poc_nonces_per_second",
        "Generation throughput over the last progress interval; 0 when not generating.");
    private static readonly Counter BatchFailures = Metrics.CreateCounter("mlnode_poc_batch_failures_total",
        "PoC forwards that failed and were retried with the same nonces.");
    private static readonly Counter CallbacksSent = Metrics.CreateCounter("mlnode_poc_callbacks_sent_total",
        "Callbacks the receiver accepted (HTTP < 400).", "path");
    private static readonly Counter CallbacksFailed = Metrics.CreateCounter("mlnode_poc_callbacks_failed_total",
        "Callback attempts that failed (HTTP ≥ 400, timeout, connection error).", "path");
    private static readonly Counter CallbacksRetried = Metrics.CreateCounter("mlnode_poc_callbacks_retried_total",
        "Callback attempts that repeated a failed one.", "path");
    private static readonly Counter CallbacksAbandoned = Metrics.CreateCounter("mlnode_poc_callbacks_abandoned_total",
        "Callbacks given up after the last retry, or dropped from a full queue.", "path");
    private static readonly Gauge Buffered = Metrics.CreateGauge("mlnode_poc_buffered_artifacts",
        "Generated artifacts waiting for their /generated callback.");
    private static readonly Counter ArtifactsDropped = Metrics.CreateCounter("mlnode_poc_artifacts_dropped_total",
        "Generated artifacts never delivered: buffer full (oldest dropped) or callback given up.", "reason");
    private static readonly Counter Jobs = Metrics.CreateCounter("mlnode_poc_generate_jobs_total",
        "Finished /generate jobs by kind (validation, generation) and outcome.", "kind", "outcome");
    private static readonly Gauge QueuedNonces = Metrics.CreateGauge("mlnode_poc_queued_nonces",
        "Nonces of queued and running /generate jobs.");

    public void NoncesComputed(int count) => Nonces.Inc(count);

    public void SetRate(double noncesPerSecond) => Rate.Set(noncesPerSecond);

    public void BatchFailed() => BatchFailures.Inc();

    public void CallbackSent(string path) => CallbacksSent.WithLabels(path).Inc();

    public void CallbackFailed(string path) => CallbacksFailed.WithLabels(path).Inc();

    public void CallbackRetried(string path) => CallbacksRetried.WithLabels(path).Inc();

    public void CallbackAbandoned(string path) => CallbacksAbandoned.WithLabels(path).Inc();

    public void ArtifactsBuffered(int delta)
    {
        if (delta >= 0) Buffered.Inc(delta);
        else Buffered.Dec(-delta);
    }

    public void ArtifactsLost(string reason, int count) => ArtifactsDropped.WithLabels(reason).Inc(count);

    public void JobFinished(bool validation, string outcome) => Jobs.WithLabels(validation ? "validation" : "generation", outcome).Inc();

    public void SetQueuedNonces(long count) => QueuedNonces.Set(count);
}

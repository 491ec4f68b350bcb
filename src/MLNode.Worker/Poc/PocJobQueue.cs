using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Options;

namespace MLNode.Worker.Poc;

/// <summary>
/// /generate jobs. Queued jobs (<c>wait=false</c>) run one after another in the background, each waiting while
/// continuous generation runs, and post their result to <c>{url}/generated</c> or <c>{url}/validated</c>;
/// <c>wait=true</c> jobs run at once for their caller. Results stay readable for a while after a job ended.
/// The nonces of queued and running jobs are capped (429 beyond).
/// </summary>
public sealed class PocJobQueue(
    PocGate gate, PocCompute compute, CallbackOutbox outbox, IOptions<PocOptions> options, PocMetrics metrics,
    ILogger<PocJobQueue> logger) : BackgroundService
{
    private readonly Channel<PocJob> _queue = Channel.CreateUnbounded<PocJob>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<Guid, PocJob> _jobs = new();
    private readonly Lock _lock = new();
    private long _queuedNonces;

    /// <summary>Queues <paramref name="job"/>; null when queued, otherwise why not (the queue is full).</summary>
    public string? TryEnqueue(PocJob job)
    {
        var limit = options.Value.MaxQueuedNonces;
        lock (_lock)
        {
            if (_queuedNonces + job.Work.Request.Nonces.Count > limit)
                return $"Queue full: {_queuedNonces} nonces queued, limit is {limit}";
            _queuedNonces += job.Work.Request.Nonces.Count;
            metrics.SetQueuedNonces(_queuedNonces);
        }
        _jobs[job.Id] = job;
        _queue.Writer.TryWrite(job);
        return null;
    }

    /// <summary>A queued job that has not expired yet.</summary>
    public PocJob? Find(Guid id)
    {
        RemoveExpired();
        return _jobs.GetValueOrDefault(id);
    }

    /// <summary>Runs a <c>wait=true</c> job for its caller now; the job tells how it ended.</summary>
    public Task RunNowAsync(PocJob job, CancellationToken ct) =>
        job.TryStart() ? RunAsync(job, ct) : Task.CompletedTask;

    /// <summary>Cancels every queued and running queued job (stop); their records stay readable as cancelled.</summary>
    public void CancelAll()
    {
        foreach (var job in _jobs.Values)
        {
            if (!job.TryCancel()) continue;
            metrics.JobFinished(job.Work.IsValidation, PocJob.Cancelled);
            Release(job);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var job in _queue.Reader.ReadAllAsync(stoppingToken))
            {
                if (job.TryStart() && await RunAsync(job, stoppingToken))
                {
                    Release(job);
                    if (job is { Status: PocJob.Completed, CallbackUrl: { } url })
                    {
                        var (path, payload) = job.Work.Callback(job.Result!);
                        outbox.Post(url, path, payload);
                    }
                }
                RemoveExpired();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // host shutdown
        }
    }

    /// <summary>Runs a started job to its end; true when this run ended it (not a cancellation from outside).</summary>
    private async Task<bool> RunAsync(PocJob job, CancellationToken ct)
    {
        var work = job.Work;
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(ct, job.Cancellation);
        var started = Stopwatch.GetTimestamp();
        logger.LogInformation("PoC /generate {Id}: {Count} nonces, {Kind}, batch {Batch}",
            job.Id, work.Request.Nonces.Count, work.IsValidation ? "validation" : "generation", work.BatchSize);
        try
        {
            var result = await work.RunAsync(job.Id.ToString(), gate, compute, options.Value.GenerateChunkTimeout, cancel.Token);
            logger.LogInformation("PoC /generate {Id} completed in {Seconds:0.00} s", job.Id, Stopwatch.GetElapsedTime(started).TotalSeconds);
            return End(job, PocJob.Completed, result);
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            logger.LogInformation("PoC /generate {Id} cancelled", job.Id);
            return End(job, PocJob.Cancelled);
        }
        catch (Exception e)
        {
            logger.LogError(e, "PoC /generate {Id} failed", job.Id);
            return End(job, PocJob.Failed, error: e.Message);
        }
    }

    private bool End(PocJob job, string status, object? result = null, string? error = null)
    {
        if (!job.TryEnd(status, result, error)) return false;
        metrics.JobFinished(job.Work.IsValidation, status);
        return true;
    }

    private void Release(PocJob job)
    {
        lock (_lock)
        {
            _queuedNonces -= job.Work.Request.Nonces.Count;
            metrics.SetQueuedNonces(_queuedNonces);
        }
    }

    private void RemoveExpired()
    {
        var ttl = options.Value.GenerateResultTtl;
        foreach (var (id, job) in _jobs)
        {
            if (job.EndedBefore(ttl))
                _jobs.TryRemove(id, out _);
        }
    }
}

using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MLNode.Protocol.Management;

namespace MLNode.Runtime.Hub;

/// <summary>
/// The background downloads behind <c>/api/v1/models/{status,download}</c> and <c>DELETE /api/v1/models</c>,
/// with the reference node's rules: a task per <c>&lt;repo&gt;:&lt;commit|latest&gt;</c>, at most
/// <see cref="HubOptions.MaxConcurrentDownloads"/> at once, <see cref="HubOptions.MaxRetries"/> retries with
/// 2^n backoff, an attempt that receives nothing for <see cref="HubOptions.StallTimeout"/> cancelled and retried.
/// A failed task's error stays for <see cref="Status"/> until the next start or delete. Register as a singleton;
/// disposing it cancels what is running.
/// </summary>
public sealed class ModelDownloads(HubCache cache, HubClient client, IOptions<HubOptions> options, ILogger<ModelDownloads> logger)
    : IDisposable, IAsyncDisposable
{
    private readonly HubOptions _options = options.Value;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, ActiveDownload> _active = [];
    private readonly ConcurrentDictionary<string, string> _failures = new();
    private bool _disposed;

    public static string TaskId(HfModelRef model) => $"{model.HfRepo}:{model.HfCommit ?? "latest"}";

    public DownloadStartResult Start(HfModelRef model)
    {
        var taskId = TaskId(model);
        if (_options.Offline)
            return Accepted($"{taskId}:offline", "IGNORED", model);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_active.ContainsKey(taskId))
                return new DownloadStartResult.AlreadyDownloading($"Model {taskId} is already downloading");
            if (_active.Count >= _options.MaxConcurrentDownloads)
                return new DownloadStartResult.TooManyDownloads($"Maximum concurrent downloads ({_options.MaxConcurrentDownloads}) reached");
            _failures.TryRemove(taskId, out _);
            if (cache.Status(model.HfRepo, model.HfCommit) == ModelCacheStatus.Downloaded)
                return Accepted(taskId, "DOWNLOADED", model);
            var download = new ActiveDownload(model, taskId);
            _active.Add(taskId, download);
            download.Run = Task.Run(() => RunAsync(download));
        }
        logger.LogInformation("Download {TaskId} started", taskId);
        return Accepted(taskId, "DOWNLOADING", model);
    }

    /// <summary>
    /// The snapshot folder of a complete copy of <paramref name="model"/>, downloading it first when the
    /// cache lacks it (what vLLM does when it starts on a model it has not seen), joining a download
    /// already under way.
    /// </summary>
    public async Task<string> EnsureAsync(HfModelRef model, CancellationToken ct)
    {
        if (cache.Status(model.HfRepo, model.HfCommit) != ModelCacheStatus.Downloaded)
        {
            if (_options.Offline)
                throw new InvalidOperationException($"{model.HfRepo} is not in the HF cache {cache.Root} and HF_HUB_OFFLINE is set");
            if (Start(model) is DownloadStartResult.TooManyDownloads busy)
                throw new InvalidOperationException(busy.Detail);
            Task? run;
            lock (_lock)
                run = _active.GetValueOrDefault(TaskId(model))?.Run;
            if (run is not null) await run.WaitAsync(ct);
        }
        return cache.Status(model.HfRepo, model.HfCommit) == ModelCacheStatus.Downloaded
            ? cache.FindSnapshot(model.HfRepo, model.HfCommit)!
            : throw new InvalidOperationException($"download of {TaskId(model)} did not complete: {_failures.GetValueOrDefault(TaskId(model)) ?? "unknown error"}");
    }

    /// <summary>DOWNLOADING with progress while a task runs; otherwise what the cache holds, with the last failure unless it is complete.</summary>
    public ModelStatusResponse Status(HfModelRef model)
    {
        var taskId = TaskId(model);
        lock (_lock)
        {
            if (_active.TryGetValue(taskId, out var download))
                return new ModelStatusResponse(model, ModelCacheStatus.Downloading, download.Progress(), null);
        }
        var status = cache.Status(model.HfRepo, model.HfCommit);
        return new ModelStatusResponse(model, status, null, status == ModelCacheStatus.Downloaded ? null : _failures.GetValueOrDefault(taskId));
    }

    /// <summary>
    /// Cancels the model's download (for a null commit, every download of the repository), waits for it to stop,
    /// then removes what the cache holds of it.
    /// </summary>
    public async Task<DeleteResult> DeleteAsync(HfModelRef model, CancellationToken ct)
    {
        var taskId = TaskId(model);
        List<ActiveDownload> stopping;
        lock (_lock)
            stopping = _active.Values.Where(d => d.TaskId == taskId || (model.HfCommit is null && d.Model.HfRepo == model.HfRepo)).ToList();
        await StopAsync(stopping).WaitAsync(ct);
        _failures.TryRemove(taskId, out _);

        if (cache.Delete(model.HfRepo, model.HfCommit))
            return Removed("deleted", model);
        if (stopping.Count > 0)
            return Removed("cancelled", model);
        return new DeleteResult.NotFound(model.HfCommit is null
            ? $"Model {taskId} not found in cache"
            : $"Revision {model.HfCommit} of {model.HfRepo} not found in cache");
    }

    public void Dispose() => _ = StopAllAsync();

    public async ValueTask DisposeAsync() => await StopAllAsync();

    private Task StopAllAsync()
    {
        List<ActiveDownload> running;
        lock (_lock)
        {
            _disposed = true;
            running = [.. _active.Values];
        }
        return StopAsync(running);
    }

    /// <summary>Cancels outside the lock: a cancelled task may finish inline and take the lock to unregister itself.</summary>
    private static Task StopAsync(IReadOnlyList<ActiveDownload> downloads)
    {
        foreach (var download in downloads) download.Cancellation.Cancel();
        return Task.WhenAll(downloads.Select(d => d.Run));
    }

    private async Task RunAsync(ActiveDownload download)
    {
        var ct = download.Cancellation.Token;
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    var commit = await AttemptAsync(download, ct);
                    logger.LogInformation("Download {TaskId} complete: commit {Commit} in {Seconds:F1} s", download.TaskId, commit, download.Elapsed.TotalSeconds);
                    return;
                }
                catch (Exception e) when (attempt <= _options.MaxRetries && e is not PermanentHubException && !ct.IsCancellationRequested)
                {
                    var delay = _options.RetryBackoffBase * Math.Pow(2, attempt);
                    logger.LogWarning("Download {TaskId} attempt {Attempt}/{Attempts} failed: {Error}; retrying in {Delay:F1} s",
                        download.TaskId, attempt, _options.MaxRetries + 1, e.Message, delay.TotalSeconds);
                    await Task.Delay(delay, ct);
                }
            }
        }
        catch (Exception) when (ct.IsCancellationRequested)
        {
            logger.LogInformation("Download {TaskId} cancelled", download.TaskId);
        }
        catch (Exception e)
        {
            _failures[download.TaskId] = e.Message;
            logger.LogError("Download {TaskId} failed: {Error}", download.TaskId, e.Message);
        }
        finally
        {
            lock (_lock) _active.Remove(download.TaskId);
        }
    }

    /// <summary>One try at the whole snapshot, watched for stalls and logged every <see cref="HubOptions.ProgressLogInterval"/>.</summary>
    private async Task<string> AttemptAsync(ActiveDownload download, CancellationToken ct)
    {
        var meter = new ProgressMeter();
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var progressLog = new Timer(_ => meter.Log(logger, $"Downloading {download.TaskId}"), null, _options.ProgressLogInterval, _options.ProgressLogInterval);
        var watchdog = WatchForStallAsync(download.TaskId, meter, attempt);
        try
        {
            return await client.DownloadSnapshotAsync(download.Model.HfRepo, download.Model.HfCommit, meter, attempt.Token);
        }
        catch (Exception) when (attempt.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new TimeoutException($"download stalled: no data for {_options.StallTimeout.TotalSeconds:0.###} s");
        }
        finally
        {
            await attempt.CancelAsync();
            await watchdog;
        }
    }

    private async Task WatchForStallAsync(string taskId, ProgressMeter meter, CancellationTokenSource attempt)
    {
        using var timer = new PeriodicTimer(_options.StallCheckInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(attempt.Token))
            {
                if (meter.SinceProgress < _options.StallTimeout) continue;
                logger.LogWarning("Download {TaskId} stalled: no data for {Seconds:F1} s; cancelling the attempt", taskId, meter.SinceProgress.TotalSeconds);
                await attempt.CancelAsync();
                return;
            }
        }
        catch (OperationCanceledException)
        {
            // the attempt ended
        }
    }

    private static DownloadStartResult.Accepted Accepted(string taskId, string status, HfModelRef model) =>
        new(new DownloadResponse(taskId, status, model));

    private static DeleteResult.Removed Removed(string status, HfModelRef model) => new(new DeleteResponse(status, model));

    /// <summary>
    /// A running task. Its CancellationTokenSource is never disposed: an unlinked one without a timer holds
    /// nothing to release, and that lets a delete cancel it at any moment without racing the task's end.
    /// </summary>
    private sealed class ActiveDownload(HfModelRef model, string taskId)
    {
        private readonly long _started = Stopwatch.GetTimestamp();
        private readonly double _startedUnix = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;

        public HfModelRef Model { get; } = model;
        public string TaskId { get; } = taskId;
        public CancellationTokenSource Cancellation { get; } = new();
        public Task Run { get; set; } = Task.CompletedTask;
        public TimeSpan Elapsed => Stopwatch.GetElapsedTime(_started);

        public DownloadProgress Progress() => new(_startedUnix, Elapsed.TotalSeconds);
    }
}

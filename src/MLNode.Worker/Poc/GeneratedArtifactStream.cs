using MLNode.Protocol.Management;
using MLNode.Protocol.Poc;

namespace MLNode.Worker.Poc;

/// <summary>
/// The /generated callbacks of one generation round. The loop adds each batch's artifacts; every interval,
/// everything buffered since the last callback goes out as one payload. An artifact leaves the buffer exactly
/// once: it is delivered, or lost to the bounds (buffer full, or its callback given up after the last retry),
/// each loss counted and logged. The generation loop never waits for the receiver.
/// </summary>
public sealed class GeneratedArtifactStream(
    string url,
    PocGeneratedCallback header,
    PocOptions options,
    CallbackClient client,
    PocMetrics metrics,
    ILogger logger)
{
    private const string Path = "generated";
    private readonly Lock _lock = new();
    private readonly Queue<PocArtifact> _buffer = new();
    private readonly TaskCompletionSource _completed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _overflowing;

    /// <summary>Buffers a batch's artifacts, dropping the oldest beyond the buffer's capacity.</summary>
    public void Add(IReadOnlyList<PocArtifact> artifacts)
    {
        var dropped = 0;
        bool firstOverflow;
        lock (_lock)
        {
            foreach (var artifact in artifacts)
                _buffer.Enqueue(artifact);
            for (; _buffer.Count > options.CallbackMaxArtifacts; dropped++)
                _buffer.Dequeue();
            firstOverflow = dropped > 0 && !_overflowing;
            _overflowing |= dropped > 0;
        }
        metrics.ArtifactsBuffered(artifacts.Count - dropped);
        if (dropped == 0) return;
        metrics.ArtifactsLost("buffer_full", dropped);
        if (firstOverflow)
            logger.LogWarning("PoC callback buffer full ({Capacity} artifacts, receiver {Url} not keeping up): dropping the oldest",
                options.CallbackMaxArtifacts, url);
    }

    /// <summary>No more artifacts will come: deliver what is buffered without waiting for the interval, then end.</summary>
    public void Complete() => _completed.TrySetResult();

    /// <summary>Delivers until <see cref="Complete"/> has been called and the buffer is empty, or the host stops.</summary>
    public async Task RunAsync(CancellationToken shutdown)
    {
        try
        {
            var last = false;
            while (!last)
            {
                await Task.WhenAny(Task.Delay(options.CallbackInterval, shutdown), _completed.Task);
                shutdown.ThrowIfCancellationRequested();
                last = _completed.Task.IsCompleted;
                var batch = TakeAll();
                if (batch.Count > 0 && !await client.SendAsync(url, Path, header with { Artifacts = batch }, shutdown))
                    metrics.ArtifactsLost("callback_given_up", batch.Count);
            }
        }
        catch (OperationCanceledException) when (shutdown.IsCancellationRequested)
        {
            var left = TakeAll().Count;
            if (left > 0)
                logger.LogWarning("Shutting down with {Count} generated artifacts not delivered to {Url}", left, url);
        }
        catch (Exception e)
        {
            logger.LogError(e, "PoC /generated callbacks to {Url} failed; {Count} buffered artifacts dropped", url, TakeAll().Count);
        }
    }

    private List<PocArtifact> TakeAll()
    {
        List<PocArtifact> batch;
        lock (_lock)
        {
            batch = [.. _buffer];
            _buffer.Clear();
            _overflowing = false;
        }
        metrics.ArtifactsBuffered(-batch.Count);
        return batch;
    }
}

using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace MLNode.Runtime;

/// <summary>
/// Bytes a long transfer (a download attempt, a weight verification) planned and moved so far, and when the
/// last of them moved: what its progress log and a stall watchdog read. Safe to feed from many threads.
/// </summary>
public sealed class ProgressMeter
{
    private readonly long _started = Stopwatch.GetTimestamp();
    private long _planned;
    private long _done;
    private long _lastProgress = Stopwatch.GetTimestamp();

    public long PlannedBytes => Interlocked.Read(ref _planned);
    public long DoneBytes => Interlocked.Read(ref _done);
    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(_started);
    public TimeSpan SinceProgress => Stopwatch.GetElapsedTime(Interlocked.Read(ref _lastProgress));

    /// <summary>Sets the total; learning it counts as progress.</summary>
    public void Plan(long bytes)
    {
        Interlocked.Exchange(ref _planned, bytes);
        Touch();
    }

    public void Add(long bytes)
    {
        Interlocked.Add(ref _done, bytes);
        Touch();
    }

    /// <summary>One line "<paramref name="activity"/>: done/total GB (rate MB/s, ETA h:mm:ss)".</summary>
    public void Log(ILogger logger, string activity)
    {
        var done = DoneBytes;
        var planned = PlannedBytes;
        var rate = done / Math.Max(Elapsed.TotalSeconds, 1e-3);
        var eta = rate > 0 ? TimeSpan.FromSeconds(Math.Round(Math.Max(planned - done, 0) / rate)) : (TimeSpan?)null;
        logger.LogInformation("{Activity}: {Done:F2}/{Total:F2} GB ({Rate:F1} MB/s, ETA {Eta})",
            activity, done / 1e9, planned / 1e9, rate / 1e6, eta?.ToString() ?? "unknown");
    }

    private void Touch() => Interlocked.Exchange(ref _lastProgress, Stopwatch.GetTimestamp());
}

using System.Diagnostics;

namespace MLNode.Worker.Poc;

/// <summary>
/// One /generate request and its life: queued → running → completed | failed | cancelled. Each job ends exactly
/// once, whoever ends it (the worker, a stop, or the caller going away).
/// </summary>
public sealed class PocJob(PocGenerateWork work, string? callbackUrl)
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";

    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _cancel = new();
    private long? _endedAt;

    /// <summary>The backend's id of the job; the routes add the port in front ("port:uuid").</summary>
    public Guid Id { get; } = Guid.NewGuid();
    public PocGenerateWork Work { get; } = work;
    public string? CallbackUrl { get; } = callbackUrl;
    public string Status { get; private set; } = Queued;
    /// <summary>The completed result (<see cref="PocGenerateWork.RunAsync"/>); null until then.</summary>
    public object? Result { get; private set; }
    public string? Error { get; private set; }

    /// <summary>Cancelled by <see cref="TryCancel"/>; the running computation observes it.</summary>
    public CancellationToken Cancellation => _cancel.Token;

    public bool EndedBefore(TimeSpan age)
    {
        lock (_lock) return _endedAt is { } at && Stopwatch.GetElapsedTime(at) > age;
    }

    /// <summary>queued → running; false when the job was cancelled while it waited.</summary>
    public bool TryStart()
    {
        lock (_lock)
        {
            if (Status != Queued) return false;
            Status = Running;
            return true;
        }
    }

    /// <summary>Ends the job; false when it had ended already (the first end wins).</summary>
    public bool TryEnd(string status, object? result = null, string? error = null)
    {
        lock (_lock)
        {
            if (_endedAt is not null) return false;
            (Status, Result, Error, _endedAt) = (status, result, error, Stopwatch.GetTimestamp());
            return true;
        }
    }

    /// <summary>
    /// Ends a job that has not ended as cancelled; a running computation stops at its next check and its
    /// result, if any, is discarded.
    /// </summary>
    public bool TryCancel()
    {
        if (!TryEnd(Cancelled)) return false;
        _cancel.Cancel();
        return true;
    }
}

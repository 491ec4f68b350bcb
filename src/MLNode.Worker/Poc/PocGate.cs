using MLNode.Protocol;
using MLNode.Protocol.Management;

namespace MLNode.Worker.Poc;

/// <summary>
/// Which PoC work holds the model right now: the continuous generation of a round, or /generate jobs
/// (validation). While any of it runs, inference requests are refused with the reference's 503, and the
/// node's <c>poc_status</c> is GENERATING or VALIDATING.
/// </summary>
/// <remarks>
/// Inference endpoints need nothing of their own: <see cref="RefuseInference"/> runs as middleware in front
/// of every route and answers for <see cref="InferencePaths"/> while the gate is closed. Code that starts
/// inference outside those routes checks <see cref="IsClosed"/>.
/// </remarks>
public sealed class PocGate
{
    /// <summary>The routes the reference refuses while PoC runs (vLLM's chat, completions, responses and audio routers).</summary>
    public static readonly string[] InferencePaths =
        ["/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/audio/transcriptions", "/v1/audio/translations"];

    public const string RefusalMessage = "PoC generation is active. Inference requests are temporarily unavailable.";

    private readonly Lock _lock = new();
    private int _generations;
    private int _jobs;
    private TaskCompletionSource _generationIdle = Completed();

    /// <summary>True while PoC work runs: inference must wait.</summary>
    public bool IsClosed
    {
        get { lock (_lock) return _generations > 0 || _jobs > 0; }
    }

    /// <summary>The <c>poc_status</c> of this backend: generation wins over jobs (which wait for it anyway).</summary>
    public PocStatus Status
    {
        get
        {
            lock (_lock)
                return _generations > 0 ? PocStatus.Generating : _jobs > 0 ? PocStatus.Validating : PocStatus.Idle;
        }
    }

    /// <summary>Marks continuous generation as running until the lease is disposed.</summary>
    public IDisposable EnterGeneration()
    {
        lock (_lock)
        {
            if (_generations++ == 0)
                _generationIdle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        return new Lease(() =>
        {
            lock (_lock)
            {
                if (--_generations == 0)
                    _generationIdle.TrySetResult();
            }
        });
    }

    /// <summary>Marks a /generate job as running until the lease is disposed.</summary>
    public IDisposable EnterJob()
    {
        lock (_lock) _jobs++;
        return new Lease(() =>
        {
            lock (_lock) _jobs--;
        });
    }

    /// <summary>Completes once no continuous generation runs (at once when none does).</summary>
    public Task WaitForGenerationIdleAsync(CancellationToken ct)
    {
        lock (_lock) return _generationIdle.Task.WaitAsync(ct);
    }

    /// <summary>Middleware: 503 for <see cref="InferencePaths"/> while the gate is closed, on either port.</summary>
    public RequestDelegate RefuseInference(RequestDelegate next) => context =>
    {
        var path = context.Request.Path;
        if (IsClosed && InferencePaths.Any(p => path.Equals(p, StringComparison.Ordinal)))
        {
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            return context.Response.WriteAsJsonAsync(
                new { error = new { message = RefusalMessage, type = "service_unavailable", code = StatusCodes.Status503ServiceUnavailable } },
                GonkaJson.Options);
        }
        return next(context);
    };

    private static TaskCompletionSource Completed()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        done.SetResult();
        return done;
    }

    private sealed class Lease(Action release) : IDisposable
    {
        private Action? _release = release;

        public void Dispose() => Interlocked.Exchange(ref _release, null)?.Invoke();
    }
}

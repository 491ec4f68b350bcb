using System.Diagnostics;
using System.Text.Json;
using MLNode.Engines.Hosting;
using MLNode.Protocol.Management;
using MLNode.Runtime.Registry;

namespace MLNode.Worker.Node;

/// <summary>Why an <c>inference/up</c> was refused before anything started.</summary>
public enum UpRefusal { None, AlreadyRunning, UnknownModel, NotServable, BadArguments }

/// <summary>
/// The node's state machine, STOPPED ⇄ INFERENCE, with the reference node's rules: one model start at
/// a time, a start while running or starting is a conflict, and <c>stop</c>/<c>down</c> always succeed.
/// The state is derived from the model host, never stored twice.
/// </summary>
public sealed class NodeController(ModelRegistry registry, ModelHost host, WorkerMetrics metrics, ILogger<NodeController> logger)
{
    private readonly Lock _gate = new();
    private Task? _loading;
    private CancellationTokenSource? _loadCancel;
    private UpStatus _status = UpStatus.NotStarted;
    private Stopwatch? _elapsed;
    private string? _error;

    public NodeState State => host.Current is null ? NodeState.Stopped : NodeState.Inference;

    public IModelExecutor? Model => host.Current;

    public bool IsStarting
    {
        get { lock (_gate) return _loading is { IsCompleted: false }; }
    }

    public UpStatusResponse GetUpStatus()
    {
        lock (_gate)
            return new UpStatusResponse(JsonNamingPolicy.SnakeCaseLower.ConvertName(_status.ToString()),
                _loading is { IsCompleted: false }, host.Current is not null, _elapsed?.Elapsed.TotalSeconds, _error);
    }

    /// <summary>Checks the request and starts loading; the returned task completes when the model serves (or failed).</summary>
    public (UpRefusal Refusal, string Message, Task Loaded) StartUp(InferenceUpRequest request)
    {
        var entry = registry.Find(request.Model);
        if (entry is null)
            return (UpRefusal.UnknownModel, $"model: '{request.Model}' is not in the model registry {registry.SourceFile} (known: {string.Join(", ", registry.Models.Select(m => m.Id))})", Task.CompletedTask);
        EngineArgs args;
        try
        {
            args = EngineArgs.Parse(request.AdditionalArgs, logger);
        }
        catch (EngineArgsException e)
        {
            return (UpRefusal.BadArguments, e.Message, Task.CompletedTask);
        }
        if (host.CheckLoadable(entry, args) is { } problem)
            return (problem.InArguments ? UpRefusal.BadArguments : UpRefusal.NotServable, problem.Message, Task.CompletedTask);
        if (!string.Equals(request.Dtype, "auto", StringComparison.OrdinalIgnoreCase))
            entry = entry with { Dtype = CanonicalDtype(request.Dtype) };

        lock (_gate)
        {
            if (_loading is { IsCompleted: false } || host.Current is not null)
                return (UpRefusal.AlreadyRunning, "Inference is already running or starting. Call /api/v1/inference/down or /api/v1/stop first.", Task.CompletedTask);
            _status = UpStatus.InProgress;
            _error = null;
            _elapsed = Stopwatch.StartNew();
            _loadCancel = new CancellationTokenSource();
            _loading = LoadAsync(entry, args, _loadCancel.Token);
            return (UpRefusal.None, "", _loading);
        }
    }

    private async Task LoadAsync(ModelEntry entry, EngineArgs args, CancellationToken ct)
    {
        await Task.Yield();
        try
        {
            await host.LoadAsync(entry, args, ct);
            metrics.ModelLoaded(entry.Id, host.LastLoadTime ?? TimeSpan.Zero);
            Finish(UpStatus.Completed, null);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            logger.LogWarning("Loading {Model} was cancelled", entry.Id);
            Finish(UpStatus.Cancelled, "cancelled by inference/down or stop");
            throw;
        }
        catch (Exception e)
        {
            logger.LogError(e, "Loading {Model} failed", entry.Id);
            metrics.ModelLoadFailed();
            Finish(UpStatus.Failed, e.Message);
            throw;
        }
    }

    private void Finish(UpStatus status, string? error)
    {
        lock (_gate)
        {
            _status = status;
            _error = error;
            _elapsed?.Stop();
        }
    }

    /// <summary>Cancels a start in progress and unloads the model; idempotent.</summary>
    public async Task DownAsync()
    {
        Task? loading;
        lock (_gate)
        {
            loading = _loading;
            _loadCancel?.Cancel();
        }
        if (loading is not null)
        {
            try
            {
                await loading;
            }
            catch (Exception)
            {
                // The outcome of the start is already recorded for inference/up/status.
            }
        }
        await host.UnloadAsync();
        metrics.ModelUnloaded();
    }

    private static string CanonicalDtype(string dtype) => dtype.ToLowerInvariant() switch
    {
        "bfloat16" or "bf16" => "bfloat16",
        "float16" or "half" or "fp16" => "float16",
        _ => "float32",
    };
}

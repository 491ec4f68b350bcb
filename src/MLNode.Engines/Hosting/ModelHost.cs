using System.Diagnostics;
using Microsoft.Extensions.Logging;
using MLNode.Runtime.Registry;
using MLNode.Runtime.Torch;

namespace MLNode.Engines.Hosting;

/// <summary>Finds (and if needed fetches or generates) the folder that holds a registry entry's files.</summary>
public interface IModelFolders
{
    Task<string> ResolveAsync(ModelEntry entry, CancellationToken ct);

    /// <summary>The files to verify when the entry lists none (the hub's LFS hashes); empty when nothing can be checked.</summary>
    IReadOnlyList<ModelFile> HubFiles(string folder);
}

/// <summary>Why a model cannot be loaded; <see cref="InArguments"/> when the engine arguments, not the model, are at fault.</summary>
public sealed record LoadProblem(bool InArguments, string Message);

/// <summary>A model that cannot be loaded for a reason the caller can fix (unknown id, no engine, bad args).</summary>
public sealed class ModelLoadException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Owns the one loaded model: resolves its folder, verifies every weight file, builds the executor
/// through the engine that supports its architecture, and hands that single instance to every role.
/// </summary>
public sealed class ModelHost(
    IModelFolders folders,
    WeightVerifier verifier,
    IEnumerable<IExecutorFactory> factories,
    TorchRuntime runtime,
    ILogger<ModelHost> logger) : IAsyncDisposable
{
    private readonly IReadOnlyList<IExecutorFactory> _factories = factories.ToList();
    private volatile IModelExecutor? _current;

    public IModelExecutor? Current => _current;

    /// <summary>Time the last successful load took, for /metrics.</summary>
    public TimeSpan? LastLoadTime { get; private set; }

    public bool CanServe(ModelEntry entry) => _factories.Any(f => f.Supports(entry.Modality, entry.Architecture));

    /// <summary>Why <paramref name="entry"/> cannot be loaded with <paramref name="args"/>, or null when it can.</summary>
    public LoadProblem? CheckLoadable(ModelEntry entry, EngineArgs args)
    {
        if (!CanServe(entry))
            return new LoadProblem(false, $"no engine in this build serves {entry.Modality.ToString().ToLowerInvariant()} architecture '{entry.Architecture}'");
        if (args.MaxModelLen > entry.Limits.MaxModelLen)
            return new LoadProblem(true, $"--max-model-len {args.MaxModelLen} exceeds the registry limit {entry.Limits.MaxModelLen} of {entry.Id}");
        return TensorParallelProblem(entry, args, runtime.IsCuda ? runtime.VisibleGpus : null);
    }

    /// <summary>
    /// Why <paramref name="entry"/> cannot run with the arguments' tensor-parallel size: only LLMs are sharded, and on GPUs
    /// each rank needs its own (<paramref name="visibleGpus"/>; null on a CPU runtime, whose ranks are threads).
    /// </summary>
    public static LoadProblem? TensorParallelProblem(ModelEntry entry, EngineArgs args, int? visibleGpus)
    {
        var ranks = args.TensorParallelSize;
        if (ranks == 1) return null;
        if (entry.Modality != Modality.Llm)
            return new LoadProblem(true, $"--tensor-parallel-size {ranks}: only LLMs are sharded here, and {entry.Id} is not one ({entry.Modality.ToString().ToLowerInvariant()})");
        if (visibleGpus is { } gpus && ranks > gpus)
            return new LoadProblem(true, $"--tensor-parallel-size {ranks} needs {ranks} GPUs, one per rank; this node sees {gpus}");
        return null;
    }

    public async Task<IModelExecutor> LoadAsync(ModelEntry entry, EngineArgs args, CancellationToken ct)
    {
        if (_current is not null)
            throw new InvalidOperationException($"model {_current.Card.Id} is loaded; unload it first");
        if (CheckLoadable(entry, args) is { } problem)
            throw new ModelLoadException(problem.Message);
        var factory = _factories.First(f => f.Supports(entry.Modality, entry.Architecture));

        var watch = Stopwatch.StartNew();
        logger.LogInformation("Loading {Model} ({Architecture}, {Dtype})", entry.Id, entry.Architecture, entry.Dtype);
        var folder = await folders.ResolveAsync(entry, ct);
        var files = entry.Files ?? folders.HubFiles(folder);
        if (files.Count == 0)
            logger.LogWarning("{Model}: no file hashes known (local folder without a file list); weights are not verified", entry.Id);
        else
            await verifier.VerifyAsync(folder, files, ct);

        var executor = await factory.LoadAsync(new ModelLoadRequest(entry, folder, args), ct);
        runtime.CudnnAttentionEnabled = executor.UsesCudnnAttention;
        _current = executor;
        LastLoadTime = watch.Elapsed;
        logger.LogInformation("Loaded {Model} from {Folder} in {Seconds:F1} s ({Params:N0} parameters on {Device})",
            entry.Id, folder, watch.Elapsed.TotalSeconds, executor.Card.ParameterCount, executor.Card.Device);
        return executor;
    }

    public async Task UnloadAsync()
    {
        var executor = Interlocked.Exchange(ref _current, null);
        if (executor is null) return;
        await executor.DisposeAsync();
        runtime.CudnnAttentionEnabled = false;
        logger.LogInformation("Unloaded {Model}", executor.Card.Id);
    }

    public ValueTask DisposeAsync() => new(UnloadAsync());
}

using MLNode.Runtime.Registry;

namespace MLNode.Engines.Hosting;

/// <summary>What every role needs to know about the loaded model.</summary>
public sealed record ModelCard(
    string Id,
    Modality Modality,
    string Architecture,
    string Dtype,
    string Device,
    string Folder,
    ModelLimits Limits,
    long ParameterCount,
    IReadOnlyDictionary<string, double> Pricing);

/// <summary>
/// One loaded model. The same instance serves the executor (OpenAI endpoints), the validator (replay)
/// and the PoC prover, so all three run the same weights through the same kernels.
/// </summary>
public interface IModelExecutor : IAsyncDisposable
{
    ModelCard Card { get; }
}

/// <summary>Builds executors for the architectures of one engine (LLM, ASR, DiT).</summary>
public interface IExecutorFactory
{
    bool Supports(Modality modality, string architecture);

    Task<IModelExecutor> LoadAsync(ModelLoadRequest request, CancellationToken ct);
}

/// <summary>Everything a factory needs: the registry entry, its verified folder, and the engine arguments.</summary>
public sealed record ModelLoadRequest(ModelEntry Entry, string Folder, EngineArgs Args);

using MLNode.Protocol.Poc;
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

    /// <summary>The PoC v2 forward of this model; null when the model has no PoC definition.</summary>
    IPocProver? Poc { get; }

    /// <summary>
    /// Whether libtorch's attention may use cuDNN's fused kernel while this model is loaded
    /// (<see cref="MLNode.Runtime.Torch.TorchRuntime.CudnnAttentionEnabled"/>). cuDNN plans every new shape at
    /// ~50 ms, so decoders, which meet a new key length every step, keep it off; a model whose attention shapes are
    /// fixed for a whole job can take it where it is faster.
    /// </summary>
    bool UsesCudnnAttention => false;

    /// <summary>
    /// Why the model can no longer serve though it is loaded (a tensor-parallel rank failed and stopped it), for the
    /// health probes; null while it can. Reloading the model is the remedy.
    /// </summary>
    string? Failure => null;
}

/// <summary>
/// PoC v2 on the served model: seeded inputs, the per-layer Householder reflections, final-norm hidden
/// state of the last position → one 12-dim artifact per nonce. Nonces whose hidden state is not finite
/// produce no artifact (the reference drops them).
/// </summary>
public interface IPocProver
{
    /// <summary>Model hidden size d: the width of the seeded inputs.</summary>
    int HiddenSize { get; }

    Task<IReadOnlyList<PocArtifact>> ComputeAsync(PocRound round, IReadOnlyList<long> nonces, CancellationToken ct);
}

/// <summary>Builds executors for the architectures of one engine (LLM, ASR, DiT).</summary>
public interface IExecutorFactory
{
    bool Supports(Modality modality, string architecture);

    Task<IModelExecutor> LoadAsync(ModelLoadRequest request, CancellationToken ct);
}

/// <summary>Everything a factory needs: the registry entry, its verified folder, and the engine arguments.</summary>
public sealed record ModelLoadRequest(ModelEntry Entry, string Folder, EngineArgs Args);

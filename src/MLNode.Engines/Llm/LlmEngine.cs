using Microsoft.Extensions.Logging;
using MLNode.Engines.Hosting;
using MLNode.Engines.Layers;
using MLNode.Runtime.Checkpoints;
using MLNode.Runtime.Registry;
using MLNode.Runtime.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Llm;

/// <summary>Loads Qwen2 / Qwen3 / Qwen3-MoE checkpoints into an <see cref="LlmExecutor"/>.</summary>
public sealed class LlmEngine(TorchRuntime runtime, ILoggerFactory loggers) : IExecutorFactory
{
    private static readonly string[] Architectures = ["qwen2", "qwen3", "qwen3_moe"];

    public bool Supports(Modality modality, string architecture) => modality == Modality.Llm && Architectures.Contains(architecture);

    public Task<IModelExecutor> LoadAsync(ModelLoadRequest request, CancellationToken ct) => Task.Run<IModelExecutor>(() =>
    {
        var config = HfModelConfig.FromFile(Path.Combine(request.Folder, "config.json"));
        if (config.ModelType != request.Entry.Architecture)
            throw new ModelLoadException($"{request.Entry.Id}: config.json says model_type '{config.ModelType}', the registry says '{request.Entry.Architecture}'");
        var model = Load(config, request.Folder, runtime.Device, DTypes.Parse(request.Entry.Dtype), loggers.CreateLogger<LlmEngine>(), ct);
        var card = new ModelCard(request.Entry.Id, Modality.Llm, request.Entry.Architecture, request.Entry.Dtype, runtime.Device.ToString(),
            request.Folder, request.Entry.Limits with { MaxModelLen = request.Args.MaxModelLen ?? request.Entry.Limits.MaxModelLen },
            model.parameters().Sum(p => p.numel()), request.Entry.Pricing);
        return new LlmExecutor(card, model);
    }, ct);

    /// <summary>Builds the model straight from the checkpoint tensors on <paramref name="device"/> in <paramref name="dtype"/>.</summary>
    public static QwenForCausalLM Load(HfModelConfig config, string folder, Device device, ScalarType dtype, ILogger logger, CancellationToken ct = default)
    {
        ct.ThrowIfCancellationRequested();
        using var checkpoint = Checkpoint.Open(folder);
        logger.LogInformation("Reading {Tensors} tensors from {Shards} shard(s) onto {Device} as {DType}", checkpoint.TensorNames.Count, checkpoint.ShardPaths.Count, device, dtype);
        var model = new QwenForCausalLM(config, new CheckpointWeights(checkpoint, device, dtype));
        model.eval();
        return model;
    }
}

/// <summary>The activation dtypes a registry entry can name.</summary>
public static class DTypes
{
    public static ScalarType Parse(string dtype) => dtype switch
    {
        "bfloat16" => ScalarType.BFloat16,
        "float16" => ScalarType.Float16,
        "float32" => ScalarType.Float32,
        _ => throw new ArgumentException($"unknown activation dtype '{dtype}'", nameof(dtype)),
    };
}

/// <summary>A loaded Qwen-family model; the same instance serves inference, replay and PoC.</summary>
public sealed class LlmExecutor(ModelCard card, QwenForCausalLM model) : IModelExecutor
{
    public ModelCard Card { get; } = card;
    public QwenForCausalLM Model { get; } = model;
    public IPocProver? Poc { get; } = new LlmPocProver(model);

    public ValueTask DisposeAsync()
    {
        Model.Dispose();
        return ValueTask.CompletedTask;
    }
}

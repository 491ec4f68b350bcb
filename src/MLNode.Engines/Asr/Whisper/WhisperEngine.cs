using Microsoft.Extensions.Logging;
using MLNode.Engines.Hosting;
using MLNode.Engines.Layers;
using MLNode.Engines.Llm;
using MLNode.Runtime.Checkpoints;
using MLNode.Runtime.Registry;
using MLNode.Runtime.Torch;
using static TorchSharp.torch;

namespace MLNode.Engines.Asr.Whisper;

/// <summary>Loads Whisper checkpoints (HF layout, any size from tiny to large-v3 and turbo) into a <see cref="WhisperExecutor"/>.</summary>
public sealed class WhisperEngine(TorchRuntime runtime, ILoggerFactory loggers) : IExecutorFactory
{
    public bool Supports(Modality modality, string architecture) => modality == Modality.Asr && architecture == "whisper";

    public Task<IModelExecutor> LoadAsync(ModelLoadRequest request, CancellationToken ct) => Task.Run<IModelExecutor>(() =>
    {
        var logger = loggers.CreateLogger<WhisperEngine>();
        var config = WhisperConfig.FromDirectory(request.Folder);
        var dtype = DTypes.Parse(request.Entry.Dtype);
        var tokenizer = WhisperTokenizer.FromDirectory(request.Folder, config);
        var model = Load(config, request.Folder, runtime.Device, dtype, logger, ct);
        var slots = request.Args.MaxNumSeqs ?? request.Entry.Limits.MaxBatch;
        var heads = config.DecoderAttentionHeads;
        logger.LogInformation("{Model}: decoder caches for {Slots} windows take {Gigabytes:F2} GB", request.Entry.Id, slots,
            WhisperKvCache.Bytes(config.DecoderLayers, slots, heads, config.DModel / heads, config.MaxTargetPositions, config.MaxSourcePositions, dtype) / 1e9);
        var card = new ModelCard(request.Entry.Id, Modality.Asr, request.Entry.Architecture, request.Entry.Dtype, runtime.Device.ToString(),
            request.Folder, request.Entry.Limits with { MaxModelLen = config.MaxTargetPositions, MaxBatch = slots },
            model.parameters().Sum(p => p.numel()), request.Entry.Pricing);
        return WhisperExecutor.Create(card, model, tokenizer, slots, runtime.Device, logger);
    }, ct);

    /// <summary>Builds the model straight from the checkpoint tensors on <paramref name="device"/> in <paramref name="dtype"/>.</summary>
    public static WhisperForConditionalGeneration Load(WhisperConfig config, string folder, Device device, ScalarType dtype, ILogger logger, CancellationToken ct = default) =>
        CheckpointWeights.Load(folder, device, dtype, logger, w => new WhisperForConditionalGeneration(config, w), ct);
}

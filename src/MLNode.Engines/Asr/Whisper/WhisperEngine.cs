using Microsoft.Extensions.Logging;
using MLNode.Engines.Layers;
using MLNode.Runtime.Checkpoints;
using static TorchSharp.torch;

namespace MLNode.Engines.Asr.Whisper;

/// <summary>Loads Whisper checkpoints (HF layout, any size from tiny to large-v3 and turbo).</summary>
public sealed class WhisperEngine
{
    /// <summary>Builds the model straight from the checkpoint tensors on <paramref name="device"/> in <paramref name="dtype"/>.</summary>
    public static WhisperForConditionalGeneration Load(WhisperConfig config, string folder, Device device, ScalarType dtype, ILogger logger, CancellationToken ct = default)
    {
        ct.ThrowIfCancellationRequested();
        using var checkpoint = Checkpoint.Open(folder);
        logger.LogInformation("Reading {Tensors} tensors from {Shards} shard(s) onto {Device} as {DType}", checkpoint.TensorNames.Count, checkpoint.ShardPaths.Count, device, dtype);
        var model = new WhisperForConditionalGeneration(config, new CheckpointWeights(checkpoint, device, dtype));
        model.eval();
        return model;
    }
}

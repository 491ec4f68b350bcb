using System.Diagnostics;
using MLNode.Engines.Hosting;
using MLNode.Engines.Poc;
using MLNode.Protocol.Poc;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Llm;

/// <summary>
/// PoC v2 on a Qwen-family model, as the reference's vLLM hook computes it: seeded inputs replace the
/// token embeddings, every decoder layer's output is reflected by that layer's Householder vector in
/// the activation dtype, and the final-norm hidden state of the last position becomes the artifact.
/// </summary>
public sealed class LlmPocProver(QwenForCausalLM model) : IPocProver
{
    private readonly SemaphoreSlim _forward = new(1, 1);
    private (string BlockHash, ScalarType DType, Tensor Vectors)? _layerVectors;
    private Tensor? _hostInputs;

    public int HiddenSize => model.Config.HiddenSize;

    /// <summary>Cumulative wall time of the two stages of every batch, for progress logs and benchmarks.</summary>
    public PocStageTimes Stages { get; } = new();

    public async Task<IReadOnlyList<PocArtifact>> ComputeAsync(PocRound round, IReadOnlyList<long> nonces, CancellationToken ct)
    {
        if (round.HiddenSize != HiddenSize)
            throw new ArgumentException($"round hidden size {round.HiddenSize} differs from the model's {HiddenSize}", nameof(round));
        await _forward.WaitAsync(ct);
        try
        {
            return await Task.Run(() => Compute(round, nonces, ct), ct);
        }
        finally
        {
            _forward.Release();
        }
    }

    private List<PocArtifact> Compute(PocRound round, IReadOnlyList<long> nonces, CancellationToken ct)
    {
        var weights = model.parameters().First();
        var (device, dtype) = (weights.device, weights.dtype);
        var (batch, length, width) = (nonces.Count, round.SeqLen, HiddenSize);

        var started = Stopwatch.GetTimestamp();
        PocInputs.FillBatch(round, nonces.ToArray(), HostInputs([batch, length, width], device));
        ct.ThrowIfCancellationRequested();
        Stages.InputSeconds += Stopwatch.GetElapsedTime(started).TotalSeconds;
        started = Stopwatch.GetTimestamp();

        List<PocArtifact> artifacts;
        using (NewDisposeScope())
        {
            // Upload first and cast on the device (libtorch would cast on the CPU during the copy); on the
            // CPU always copy, so the model never aliases the reused host buffer.
            var onGpu = device.type == DeviceType.CUDA;
            var x = onGpu ? _hostInputs!.to(device, non_blocking: true).to(dtype) : _hostInputs!.to(dtype, copy: true);
            if (onGpu) cuda.synchronize();
            Stages.UploadSeconds += Stopwatch.GetElapsedTime(started).TotalSeconds;
            var vectors = LayerVectors(round.BlockHash, dtype, device);
            var hidden = model.Hidden(x, (layer, h) => Reflect(h, vectors[layer]));
            artifacts = ArtifactBatch.Encode(round, nonces, hidden[TensorIndex.Colon, -1, TensorIndex.Colon]);
        }

        Stages.ForwardSeconds += Stopwatch.GetElapsedTime(started).TotalSeconds;
        return artifacts;
    }

    /// <summary>
    /// The float32 input batch is generated straight into one host tensor kept across batches (page-locked
    /// when the model is on a GPU, so the upload is a single DMA): no managed copy of half a gigabyte per batch.
    /// </summary>
    private unsafe Span<float> HostInputs(long[] shape, Device device)
    {
        if (_hostInputs is null || !_hostInputs.shape.SequenceEqual(shape))
        {
            _hostInputs?.Dispose();
            using var plain = empty(shape, ScalarType.Float32);
            _hostInputs = (device.type == DeviceType.CUDA ? plain.pin_memory() : plain.clone()).DetachFromDisposeScope();
        }
        return new Span<float>((void*)_hostInputs.storage<float>().data_ptr(), checked((int)_hostInputs.numel()));
    }

    /// <summary>H x = x − 2 (x·v) v per token, in the activation dtype like the reference's hook.</summary>
    private static Tensor Reflect(Tensor h, Tensor v) => h - 2 * matmul(h, v).unsqueeze(-1) * v;

    /// <summary>The per-layer unit vectors depend only on the block hash: built once per PoC round.</summary>
    private Tensor LayerVectors(string blockHash, ScalarType dtype, Device device)
    {
        if (_layerVectors is { } cached && cached.BlockHash == blockHash && cached.DType == dtype)
            return cached.Vectors;
        _layerVectors?.Vectors.Dispose();
        var flat = Enumerable.Range(0, model.LayerCount).SelectMany(i => Householder.LayerVector(blockHash, i, HiddenSize)).ToArray();
        var vectors = tensor(flat, [model.LayerCount, HiddenSize]).to(device).to(dtype).DetachFromDisposeScope();
        _layerVectors = (blockHash, dtype, vectors);
        return vectors;
    }
}

public sealed class PocStageTimes
{
    /// <summary>Seeded input generation on the CPU.</summary>
    public double InputSeconds { get; set; }

    /// <summary>Of <see cref="ForwardSeconds"/>: the inputs' copy to the device and cast to the activation dtype.</summary>
    public double UploadSeconds { get; set; }

    /// <summary>Upload, model forward with reflections, and the last hidden rows back to the CPU.</summary>
    public double ForwardSeconds { get; set; }
}

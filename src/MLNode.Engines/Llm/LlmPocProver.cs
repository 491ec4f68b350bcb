using System.Diagnostics;
using MLNode.Engines.Hosting;
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
        var inputs = new float[(long)batch * length * width];
        PocInputs.FillBatch(round, nonces.ToArray(), inputs);
        ct.ThrowIfCancellationRequested();
        Stages.InputSeconds += Stopwatch.GetElapsedTime(started).TotalSeconds;
        started = Stopwatch.GetTimestamp();

        float[] last;
        using (NewDisposeScope())
        {
            var x = tensor(inputs, [batch, length, width]).to(device).to(dtype);
            var vectors = LayerVectors(round.BlockHash, dtype, device);
            var hidden = model.Hidden(x, (layer, h) => Reflect(h, vectors[layer]));
            last = hidden[TensorIndex.Colon, -1, TensorIndex.Colon].to(ScalarType.Float32).cpu().data<float>().ToArray();
        }

        Stages.ForwardSeconds += Stopwatch.GetElapsedTime(started).TotalSeconds;

        var artifacts = new List<PocArtifact>(batch);
        for (var i = 0; i < batch; i++)
        {
            var row = last.AsSpan(i * width, width);
            // Non-finite hidden states produce no artifact, as the reference drops NaN rows.
            if (ArtifactEncoder.IsFinite(row))
                artifacts.Add(new PocArtifact(nonces[i], ArtifactEncoder.Encode(round, nonces[i], row)));
        }
        return artifacts;
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

    /// <summary>Upload, model forward with reflections, and the last hidden rows back to the CPU.</summary>
    public double ForwardSeconds { get; set; }
}

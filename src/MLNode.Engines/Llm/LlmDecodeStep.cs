using System.Numerics;
using Microsoft.Extensions.Logging;
using MLNode.Engines.Layers;
using MLNode.Runtime.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Llm;

/// <summary>
/// One decode step of a batch of sequences, one new token each, to float32 logits [B, V]. A dense model's step is
/// ~480 libtorch ops at ~25 µs of host time each from .NET, several times the GPU's time for it, so on a CUDA device
/// with the native library the step replays a CUDA graph captured per (batch, key span) bucket: the batch padded to a
/// power of two by repeating its first row (which rewrites that row's key and value with the same numbers), the span
/// rounded up to a power of two of at least <see cref="MinSpan"/> positions (the mask hides the rest). Mixture-of-experts
/// models route tokens to experts with data-dependent shapes, which a graph cannot hold, and run eagerly, as everything
/// does on the CPU, and as tensor-parallel ranks do (their collectives run outside any graph).
/// </summary>
internal sealed class LlmDecodeStep(QwenForCausalLM model, KvCache cache, Device device, ILogger logger) : IDisposable
{
    public const int MinSpan = 256;

    private readonly Dictionary<(int Rows, long Span), Captured> _graphs = [];
    private bool _graphed = device.type == DeviceType.CUDA && !model.Config.IsMoe && model.Parallel.Communicator is null && CudaGraph.IsAvailable;

    /// <summary>
    /// float32 logits [B, V] of one step; from a graph they are its output buffer, valid until the next call (the
    /// callers sample from them before they step again). <paramref name="ids"/> int64 [B] may be on the host or already
    /// on the device (the previous step's tokens); nothing here waits for the work queued on the device, so the host can
    /// queue this step while the previous one runs.
    /// </summary>
    public Tensor Logits(Tensor ids, long[] slots, long[] positions)
    {
        var span = positions.Max() + 1;
        if (!_graphed) return Eager(ids, slots, positions, span);
        var rows = (int)BitOperations.RoundUpToPowerOf2((uint)slots.Length);
        var bucket = Math.Min(cache.Capacity, (long)BitOperations.RoundUpToPowerOf2((ulong)Math.Max(span, MinSpan)));
        using var scope = NewDisposeScope();
        var paddedIds = OnDevice(rows == slots.Length ? ids : cat([ids, ids.narrow(0, 0, 1).expand(rows - slots.Length)]));
        var (paddedSlots, paddedPositions) = (Upload(Padded(slots, rows)), Upload(Padded(positions, rows)));
        if (!_graphs.TryGetValue((rows, bucket), out var graph))
        {
            try
            {
                _graphs[(rows, bucket)] = graph = Capture(paddedIds.clone(), paddedSlots, paddedPositions, bucket);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // A libtorch that cannot capture some op of this model costs speed, not service: eager from now on.
                logger.LogWarning(e, "Decode step could not be captured as a CUDA graph; decoding runs op by op");
                _graphed = false;
                return Eager(ids, slots, positions, span).MoveToOuterDisposeScope();
            }
        }
        graph.Ids.copy_(paddedIds);
        graph.Slots.copy_(paddedSlots);
        graph.Positions.copy_(paddedPositions);
        graph.Graph.Replay();
        return graph.Logits.narrow(0, 0, slots.Length).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Captures the graphs of every batch bucket up to <paramref name="maxRows"/> sequences at the shortest span, so the
    /// first requests do not pay a capture (a forward and the capture itself, ~0.1 s each). Only while no sequence holds a
    /// cache slot: the captures write keys and values at position 0 of the first slots.
    /// </summary>
    public void WarmUp(int maxRows)
    {
        if (!_graphed) return;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var buckets = 0;
        for (var rows = 1; rows <= (int)BitOperations.RoundUpToPowerOf2((uint)maxRows); rows *= 2, buckets++)
        {
            var slots = Enumerable.Range(0, rows).Select(i => (long)(i < cache.Slots ? i : 0)).ToArray();
            using (Logits(zeros(rows, ScalarType.Int64), slots, new long[rows])) { }
            if (!_graphed) return;
        }
        logger.LogInformation("Captured {Buckets} decode-step CUDA graphs (1 to {Rows} sequences) in {Seconds:F1} s", buckets, maxRows, watch.Elapsed.TotalSeconds);
    }

    public void Dispose()
    {
        foreach (var graph in _graphs.Values)
        {
            graph.Graph.Dispose();
            foreach (var t in new[] { graph.Ids, graph.Slots, graph.Positions, graph.Logits }) t.Dispose();
        }
        _graphs.Clear();
    }

    private Tensor Eager(Tensor ids, long[] slots, long[] positions, long span)
    {
        using var scope = NewDisposeScope();
        var step = new DecodeStep(cache, Upload(slots), Upload(positions), span);
        return model.Decode(OnDevice(ids), step).MoveToOuterDisposeScope();
    }

    private Tensor Upload(long[] values) => PinnedUpload.Int64(values, device);

    private Tensor OnDevice(Tensor ids) => ids.device_type == DeviceType.CPU ? Upload(ids.data<long>().ToArray()) : ids;

    private static long[] Padded(long[] values, int rows) => [.. values, .. Enumerable.Repeat(values[0], rows - values.Length)];

    /// <summary>
    /// Captures the step over <paramref name="span"/> positions for the batch in <paramref name="ids"/>,
    /// <paramref name="slots"/> and <paramref name="positions"/> (device tensors the graph keeps reading): its warm-up run
    /// is this step's own, so the keys and values it writes are the ones the replay writes again.
    /// </summary>
    private Captured Capture(Tensor ids, Tensor slots, Tensor positions, long span)
    {
        using var scope = NewDisposeScope();
        var graph = CudaGraph.Capture(() => model.Decode(ids, new DecodeStep(cache, slots, positions, span)), out var logits);
        return new Captured(graph, ids.DetachFromDisposeScope(), slots.DetachFromDisposeScope(), positions.DetachFromDisposeScope(), logits.DetachFromDisposeScope());
    }

    private sealed record Captured(CudaGraph Graph, Tensor Ids, Tensor Slots, Tensor Positions, Tensor Logits);
}

using MLNode.Runtime.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Asr.Whisper;

/// <summary>
/// The decoding step, one token per live window to float32 logits [rows, vocabulary]. Its ~800 small ops cost ~25 µs
/// of host time each from .NET against ~0.5 ms of GPU work for large-v3 at one window, so on a CUDA device with the
/// native library the step is captured once per batch size as a CUDA graph and replayed; elsewhere it runs eagerly.
/// Both run the same ops (<see cref="WhisperForConditionalGeneration.StepLogits"/>), whose shapes do not change
/// between steps: the position lives in the cache on the device.
/// </summary>
internal sealed class WhisperDecodeStep(WhisperForConditionalGeneration model, WhisperKvCache cache) : IDisposable
{
    private readonly Dictionary<int, Captured> _graphs = [];
    private readonly bool _graphed = cache.Position.device.type == DeviceType.CUDA && CudaGraph.IsAvailable;

    /// <summary>Logits of <paramref name="ids"/> [rows, 1] at decoder position <paramref name="position"/> of every live window.</summary>
    public Tensor Logits(Tensor ids, int position)
    {
        cache.Position.fill_(position);
        if (!_graphed) return model.StepLogits(ids, cache);
        if (!_graphs.TryGetValue(cache.Rows, out var step)) _graphs[cache.Rows] = step = Capture(ids);
        step.Ids.copy_(ids);
        step.Graph.Replay();
        // The graph rewrites its output at the next replay; the caller keeps these logits past it.
        return step.Logits.clone();
    }

    public void Dispose()
    {
        foreach (var step in _graphs.Values)
        {
            step.Graph.Dispose();
            step.Ids.Dispose();
            step.Logits.Dispose();
        }
        _graphs.Clear();
    }

    private Captured Capture(Tensor ids)
    {
        using var scope = NewDisposeScope();
        var input = ids.clone();
        var graph = CudaGraph.Capture(() => model.StepLogits(input, cache), out var logits);
        return new Captured(graph, input.DetachFromDisposeScope(), logits.DetachFromDisposeScope());
    }

    private sealed record Captured(CudaGraph Graph, Tensor Ids, Tensor Logits);
}

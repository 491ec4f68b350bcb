using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace MLNode.Runtime.Native;

/// <summary>
/// A CUDA graph of libtorch ops issued from .NET (native/mlnode_graph.cpp). TorchSharp launches each op on its own at
/// ~25 µs of host time, so a step of hundreds of small ops is bound by the host; replaying the captured step is one
/// launch. What the captured ops read must be rewritten in place (same tensors) before each <see cref="Replay"/>, and
/// the captured outputs are rewritten by it.
/// </summary>
public sealed partial class CudaGraph : IDisposable
{
    private nint _handle;

    private CudaGraph(nint handle) => _handle = handle;

    /// <summary>True when graphs can be captured: the native library is loaded and was built against libtorch.</summary>
    public static bool IsAvailable => NativeKernels.HasTorch;

    /// <summary>
    /// Runs <paramref name="ops"/> once to warm up (cuBLAS handles and workspaces, attention kernels' first-call
    /// set-up must not happen during capture), then captures a second run; <paramref name="outputs"/> is what the
    /// captured run returned, allocated in the graph's memory pool and rewritten by every replay.
    /// </summary>
    public static CudaGraph Capture(Func<Tensor> ops, out Tensor outputs)
    {
        ArgumentNullException.ThrowIfNull(ops);
        NativeKernels.Check(mlnode_graph_create(out var handle), nameof(mlnode_graph_create));
        var graph = new CudaGraph(handle);
        try
        {
            NativeKernels.Check(mlnode_graph_enter(handle), nameof(mlnode_graph_enter));
            try
            {
                using (NewDisposeScope()) ops();
                NativeKernels.Check(mlnode_graph_capture_begin(handle), nameof(mlnode_graph_capture_begin));
                Tensor? captured = null;
                try
                {
                    captured = ops();
                }
                finally
                {
                    // Ends the capture even when an op failed inside it, so the stream is usable again.
                    var status = mlnode_graph_capture_end(handle);
                    if (captured is not null) NativeKernels.Check(status, nameof(mlnode_graph_capture_end));
                }
                outputs = captured;
            }
            finally
            {
                NativeKernels.Check(mlnode_graph_exit(handle), nameof(mlnode_graph_exit));
            }
            return graph;
        }
        catch
        {
            graph.Dispose();
            throw;
        }
    }

    /// <summary>Launches the captured ops on libtorch's current stream, after the work queued there.</summary>
    public void Replay()
    {
        ObjectDisposedException.ThrowIf(_handle == 0, this);
        NativeKernels.Check(mlnode_graph_replay(_handle), nameof(mlnode_graph_replay));
    }

    public void Dispose()
    {
        if (_handle == 0) return;
        mlnode_graph_destroy(_handle);
        _handle = 0;
    }

    [LibraryImport(NativeKernels.LibraryName)] private static partial int mlnode_graph_create(out nint graph);
    [LibraryImport(NativeKernels.LibraryName)] private static partial int mlnode_graph_enter(nint graph);
    [LibraryImport(NativeKernels.LibraryName)] private static partial int mlnode_graph_capture_begin(nint graph);
    [LibraryImport(NativeKernels.LibraryName)] private static partial int mlnode_graph_capture_end(nint graph);
    [LibraryImport(NativeKernels.LibraryName)] private static partial int mlnode_graph_exit(nint graph);
    [LibraryImport(NativeKernels.LibraryName)] private static partial int mlnode_graph_replay(nint graph);
    [LibraryImport(NativeKernels.LibraryName)] private static partial int mlnode_graph_destroy(nint graph);
}

using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Runtime.Native;

/// <summary>
/// Copies of device tensors to the host that do not stall the GPU: queued on libtorch's stream into page-locked memory
/// with a mark after them (native/mlnode_abi.cpp), so the host can queue more work — the next decode step — before it
/// waits for them, and then waits only for the copies, not for that work. On the CPU, or without the native library,
/// the copies are made at once.
/// </summary>
public sealed partial class HostCopy : IDisposable
{
    private readonly Tensor[] _copies;
    private nint _mark;

    private HostCopy(Tensor[] copies, nint mark) => (_copies, _mark) = (copies, mark);

    /// <summary>Starts copying <paramref name="sources"/> (contiguous tensors of one device) to the host.</summary>
    public static HostCopy Start(params Tensor[] sources)
    {
        if (sources.Length == 0 || !NativeKernels.Handles(sources[0]))
            return new HostCopy([.. sources.Select(s => (s.device_type == DeviceType.CPU ? s.clone() : s.cpu()).DetachFromDisposeScope())], 0);
        CudaDevice.MakeCurrent(Math.Max(0, sources[0].device.index));
        var copies = new Tensor[sources.Length];
        for (var i = 0; i < sources.Length; i++)
        {
            using var plain = empty(sources[i].shape, sources[i].dtype);
            copies[i] = plain.pin_memory().DetachFromDisposeScope();
            copies[i].copy_(sources[i], true);
        }
        NativeKernels.Check(mlnode_mark_record(out var mark), nameof(mlnode_mark_record));
        return new HostCopy(copies, mark);
    }

    /// <summary>The host tensors, in the order given, once the GPU has written them.</summary>
    public IReadOnlyList<Tensor> Wait()
    {
        ObjectDisposedException.ThrowIf(_copies.Length > 0 && _copies[0].IsInvalid, this);
        if (_mark != 0)
        {
            NativeKernels.Check(mlnode_mark_wait(_mark), nameof(mlnode_mark_wait));
            mlnode_mark_destroy(_mark);
            _mark = 0;
        }
        return _copies;
    }

    public void Dispose()
    {
        if (_mark != 0)
        {
            // A copy still in flight writes into the page-locked buffers: let it land before they are freed.
            mlnode_mark_wait(_mark);
            mlnode_mark_destroy(_mark);
            _mark = 0;
        }
        foreach (var copy in _copies) copy.Dispose();
    }

    [LibraryImport(NativeKernels.LibraryName)] private static partial int mlnode_mark_record(out nint mark);
    [LibraryImport(NativeKernels.LibraryName)] private static partial int mlnode_mark_wait(nint mark);
    [LibraryImport(NativeKernels.LibraryName)] private static partial int mlnode_mark_destroy(nint mark);
}

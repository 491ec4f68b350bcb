using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace MLNode.Runtime.Native;

/// <summary>
/// Makes a GPU the calling thread's current CUDA device, as <c>cudaSetDevice</c> does. The native kernels launch on the
/// current device (and libtorch's current stream is per device), while libtorch ops switch to their tensors' device
/// and back; so before a kernel touches a tensor, its device must be made current: a tensor-parallel rank's thread
/// works on its own GPU, and the generator samples the last rank's logits on the last GPU. Through the driver API
/// (<c>libcuda.so.1</c>, the driver's stable name), whose primary context of a device is the one the CUDA runtime and
/// libtorch use for it.
/// </summary>
internal static partial class CudaDevice
{
    private const string Library = "libcuda.so.1";
    private const int Success = 0;
    private static readonly ConcurrentDictionary<int, nint> PrimaryContexts = new();

    /// <summary>Makes <paramref name="device"/> current on this thread (nothing to do when it already is).</summary>
    public static void MakeCurrent(int device)
    {
        var context = PrimaryContexts.GetOrAdd(device, Retain);
        Check(cuCtxGetCurrent(out var current), nameof(cuCtxGetCurrent), device);
        if (current != context) Check(cuCtxSetCurrent(context), nameof(cuCtxSetCurrent), device);
    }

    /// <summary>The device's primary context, retained for the life of the process (libtorch holds it as long).</summary>
    private static nint Retain(int device)
    {
        Check(cuDeviceGet(out var handle, device), nameof(cuDeviceGet), device);
        Check(cuDevicePrimaryCtxRetain(out var context, handle), nameof(cuDevicePrimaryCtxRetain), device);
        return context;
    }

    private static void Check(int result, string call, int device)
    {
        if (result == Success) return;
        var message = cuGetErrorString(result, out var text) == Success ? Marshal.PtrToStringUTF8(text) : null;
        throw new NativeKernelException(call, result, $"cuda:{device}: {message ?? "unknown CUDA driver error"}");
    }

    [LibraryImport(Library)] private static partial int cuDeviceGet(out int device, int ordinal);
    [LibraryImport(Library)] private static partial int cuDevicePrimaryCtxRetain(out nint context, int device);
    [LibraryImport(Library)] private static partial int cuCtxGetCurrent(out nint context);
    [LibraryImport(Library)] private static partial int cuCtxSetCurrent(nint context);
    [LibraryImport(Library)] private static partial int cuGetErrorString(int result, out nint text);
}

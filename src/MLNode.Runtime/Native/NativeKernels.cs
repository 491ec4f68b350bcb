using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Runtime.Native;

/// <summary>
/// The bindings of <c>libmlnode_kernels.so</c> (built from <c>kernels/</c> and <c>native/</c> with CMake on a
/// CUDA machine). Each kernel's entry points live in a partial file of this class beside its C# reference;
/// callers ask <see cref="Handles"/> whether a tensor can go to the native kernel and otherwise run the
/// reference, so a machine without the library or a GPU computes the same thing, only slower.
/// </summary>
/// <remarks>
/// The library is found through <c>MLNODE_KERNELS</c> (the file or its folder), else beside the
/// executable. Kernels launch on libtorch's current stream (<see cref="Stream"/>), so every kernel is
/// ordered with the libtorch ops before and after it without any synchronisation.
/// </remarks>
public static partial class NativeKernels
{
    public const string LibraryName = "mlnode_kernels";
    public const string PathVariable = "MLNODE_KERNELS";
    private const int AbiVersion = 6;
    private const int Ok = 0;

    private static readonly Lazy<(bool Loaded, string Description)> State = new(Probe);
    private static int _logged;

    static NativeKernels() => NativeLibraries.Register(LibraryName, Resolve);

    /// <summary>True when the library loaded, has this ABI version and sees at least one CUDA device.</summary>
    public static bool IsAvailable => State.Value.Loaded;

    /// <summary>What was found, in words: the library's path and device count, or why the references run instead.</summary>
    public static string Description => State.Value.Description;

    /// <summary>
    /// libtorch's current CUDA stream, which every kernel launches on. A library built without libtorch's
    /// headers answers the legacy default stream: the same one, because TorchSharp has no stream API and
    /// nothing in this process selects another.
    /// </summary>
    public static nint Stream
    {
        get
        {
            Check(mlnode_current_stream(out var stream), nameof(mlnode_current_stream));
            return stream;
        }
    }

    /// <summary>True when the library was built against libtorch's headers: kernels follow its current stream, and <see cref="CudaGraph"/> works.</summary>
    public static bool HasTorch => IsAvailable && mlnode_with_torch() == 1;

    /// <summary>True when <paramref name="tensor"/> lives on a CUDA device and the native kernels can run.</summary>
    public static bool Handles(Tensor tensor) => tensor.device.type == DeviceType.CUDA && IsAvailable;

    /// <summary>
    /// Logs once per process which implementation the kernels use: a warning when a GPU runtime has to run
    /// the slower references, information on a CPU runtime, where the references are the implementation.
    /// </summary>
    public static void LogOnce(ILogger logger, bool gpuRuntime)
    {
        if (Interlocked.Exchange(ref _logged, 1) != 0) return;
        if (IsAvailable) logger.LogInformation("Native kernels: {Description}", Description);
        else if (gpuRuntime) logger.LogWarning("Native kernels unavailable ({Description}): the C# reference implementations run instead", Description);
        else logger.LogInformation("Native kernels not used on the CPU ({Description}): the C# reference implementations run", Description);
    }

    /// <summary>
    /// The device address of <paramref name="tensor"/>'s first element (libtorch's <c>data_ptr</c>, which
    /// includes the storage offset). Kernels read dense row-major device memory, so the tensor must be a
    /// contiguous CUDA tensor: a host address handed to a kernel would fault the whole CUDA context. The tensor's
    /// GPU becomes the thread's current device, where the kernel (and <see cref="Stream"/>, read after the
    /// pointers) then launches: on a machine of several GPUs, not every tensor is on device 0.
    /// </summary>
    public static nint Pointer(Tensor tensor)
    {
        if (tensor.device_type != DeviceType.CUDA)
            throw new ArgumentException($"native kernels take CUDA tensors; got one on {tensor.device}", nameof(tensor));
        if (!tensor.is_contiguous())
            throw new ArgumentException($"native kernels take contiguous tensors; got shape [{string.Join(", ", tensor.shape)}] with strides [{string.Join(", ", tensor.stride())}]", nameof(tensor));
        var address = THSTensor_data(tensor.Handle);
        if (address == 0 && tensor.numel() > 0) torch.CheckForErrors();
        CudaDevice.MakeCurrent(Math.Max(0, tensor.device.index));
        return address;
    }

    /// <summary>
    /// uint32 seeds as the int32 tensor the kernels take (the same bits; libtorch has no uint32 type) on
    /// <paramref name="device"/>.
    /// </summary>
    public static Tensor SeedTensor(ReadOnlySpan<uint> seeds, Device device) =>
        torch.tensor(MemoryMarshal.Cast<uint, int>(seeds).ToArray(), device: device);

    /// <summary>Throws with the library's message when a call failed.</summary>
    internal static void Check(int status, string entryPoint)
    {
        if (status != Ok)
            throw new NativeKernelException(entryPoint, status, Marshal.PtrToStringUTF8(mlnode_last_error()) ?? "");
    }

    private static (bool, string) Probe()
    {
        try
        {
            var version = mlnode_abi_version();
            if (version != AbiVersion)
                return (false, $"{LibraryPath() ?? LibraryName} has ABI version {version}, this build needs {AbiVersion}");
            Check(mlnode_device_count(out var devices), nameof(mlnode_device_count));
            return devices > 0
                ? (true, $"{LibraryPath() ?? LibraryName}, {devices} CUDA device(s)")
                : (false, $"{LibraryPath() ?? LibraryName} loaded, but no CUDA device is visible");
        }
        catch (DllNotFoundException)
        {
            return (false, $"lib{LibraryName}.so not found (set {PathVariable} or build native/ with CMake)");
        }
        catch (Exception e) when (e is EntryPointNotFoundException or NativeKernelException)
        {
            return (false, e.Message);
        }
    }

    private static nint Resolve()
    {
        var path = LibraryPath();
        return path is not null && NativeLibrary.TryLoad(path, out var handle) ? handle : 0;
    }

    private static string? LibraryPath()
    {
        var file = $"lib{LibraryName}.so";
        var configured = Environment.GetEnvironmentVariable(PathVariable);
        string[] candidates = string.IsNullOrWhiteSpace(configured)
            ? [Path.Combine(AppContext.BaseDirectory, file)]
            : [configured, Path.Combine(configured, file)];
        return candidates.FirstOrDefault(File.Exists);
    }

    [LibraryImport(LibraryName)] private static partial int mlnode_abi_version();
    [LibraryImport(LibraryName)] private static partial nint mlnode_last_error();
    [LibraryImport(LibraryName)] private static partial int mlnode_with_torch();
    [LibraryImport(LibraryName)] private static partial int mlnode_device_count(out int count);
    [LibraryImport(LibraryName)] private static partial int mlnode_current_stream(out nint stream);

    // TorchSharp exposes typed storage pointers only; its native shim returns the untyped data_ptr.
    [LibraryImport("LibTorchSharp")] private static partial nint THSTensor_data(nint tensor);
}

/// <summary>A native kernel reported a failure (bad argument, CUDA error, unsupported type); nothing was written.</summary>
public sealed class NativeKernelException(string entryPoint, int status, string message)
    : Exception($"{entryPoint} failed with status {status}: {message}")
{
    public int Status { get; } = status;
}

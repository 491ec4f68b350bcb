using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using MLNode.Protocol.Management;
using MLNode.Runtime.Native;
using TorchSharp;

namespace MLNode.Runtime.Torch;

/// <summary>
/// Chooses the tensor device once per process. CPU uses the libtorch of the TorchSharp-cpu package; CUDA
/// uses an installed CUDA libtorch (for example <c>torch/lib</c> of a PyTorch install) whose libraries
/// are loaded before TorchSharp initialises, so TorchSharp binds to them instead of its CPU build.
/// </summary>
public sealed class TorchRuntime
{
    /// <summary>Load order matters: each library resolves symbols of the ones before it.</summary>
    private static readonly string[] CudaLibraries = ["libc10.so", "libtorch_cpu.so", "libc10_cuda.so", "libtorch_cuda.so", "libtorch.so"];
    private static readonly Lock Gate = new();
    private static TorchRuntime? _current;

    private TorchRuntime(torch.Device device, string libtorch, string? libtorchPath)
    {
        Device = device;
        Libtorch = libtorch;
        LibtorchPath = libtorchPath;
    }

    public torch.Device Device { get; }
    public string Libtorch { get; }
    public string? LibtorchPath { get; }
    public bool IsCuda => Device.type == DeviceType.CUDA;

    public RuntimeInfo Info => new(Device.ToString(), Libtorch, LibtorchPath);

    /// <summary>
    /// Initialises TorchSharp at most once per process. <paramref name="libtorchFolder"/> (option
    /// <c>Runtime:Libtorch</c> or env <c>MLNODE_LIBTORCH</c>) selects CUDA; without it the CPU build runs.
    /// </summary>
    public static TorchRuntime Initialize(string? libtorchFolder, ILogger logger)
    {
        lock (Gate)
        {
            if (_current is not null) return _current;
            _current = string.IsNullOrWhiteSpace(libtorchFolder) ? StartCpu() : StartCuda(libtorchFolder, logger);
            torch.set_grad_enabled(false);
            logger.LogInformation("Tensor runtime: device {Device}, {Libtorch}{Path}", _current.Device, _current.Libtorch,
                _current.LibtorchPath is null ? "" : $" from {_current.LibtorchPath}");
            NativeKernels.LogOnce(logger, _current.IsCuda);
            return _current;
        }
    }

    private static TorchRuntime StartCpu()
    {
        torch.InitializeDeviceType(DeviceType.CPU);
        return new TorchRuntime(torch.CPU, $"libtorch {torch.__version__} (CPU, TorchSharp-cpu)", null);
    }

    private static TorchRuntime StartCuda(string folder, ILogger logger)
    {
        var full = Path.GetFullPath(folder);
        foreach (var lib in CudaLibraries)
        {
            var path = Path.Combine(full, lib);
            if (!File.Exists(path))
                throw new InvalidOperationException($"CUDA libtorch folder {full} has no {lib}; point MLNODE_LIBTORCH at the lib folder of a CUDA PyTorch or libtorch install");
            NativeLibrary.Load(path);
        }
        torch.InitializeDeviceType(DeviceType.CUDA);
        if (!torch.cuda.is_available())
            throw new InvalidOperationException($"libtorch from {full} loaded but reports no CUDA device");
        logger.LogInformation("CUDA devices visible to libtorch: {Count}", torch.cuda.device_count());
        return new TorchRuntime(torch.CUDA, $"libtorch {torch.__version__} (CUDA)", full);
    }
}

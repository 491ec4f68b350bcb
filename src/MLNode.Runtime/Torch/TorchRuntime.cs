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

    private readonly CudnnAttention? _cudnnAttention;

    private TorchRuntime(torch.Device device, string libtorch, string? libtorchPath, CudnnAttention? cudnnAttention = null)
    {
        Device = device;
        Libtorch = libtorch;
        LibtorchPath = libtorchPath;
        _cudnnAttention = cudnnAttention;
    }

    public torch.Device Device { get; }
    public string Libtorch { get; }
    public string? LibtorchPath { get; }
    public bool IsCuda => Device.type == DeviceType.CUDA;

    /// <summary>CUDA devices libtorch sees (0 on a CPU runtime): the most tensor-parallel ranks a model can have here.</summary>
    public int VisibleGpus => IsCuda ? torch.cuda.device_count() : 0;

    public RuntimeInfo Info => new(Device.ToString(), Libtorch, LibtorchPath);

    /// <summary>
    /// Whether scaled_dot_product_attention may pick cuDNN's fused attention (see <see cref="CudnnAttention"/>).
    /// Off from the start of a CUDA runtime: decoders meet a new shape every step. An engine whose attention
    /// shapes are fixed per job may turn it back on where cuDNN is faster. Process-wide, like libtorch's flag.
    /// </summary>
    public bool CudnnAttentionEnabled
    {
        get => _cudnnAttention?.Enabled ?? false;
        set
        {
            if (_cudnnAttention is not null) _cudnnAttention.Enabled = value;
        }
    }

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
        var handles = new Dictionary<string, nint>();
        foreach (var lib in CudaLibraries)
        {
            var path = Path.Combine(full, lib);
            if (!File.Exists(path))
                throw new InvalidOperationException($"CUDA libtorch folder {full} has no {lib}; point MLNODE_LIBTORCH at the lib folder of a CUDA PyTorch or libtorch install");
            handles[lib] = NativeLibrary.Load(path);
        }
        torch.InitializeDeviceType(DeviceType.CUDA);
        if (!torch.cuda.is_available())
            throw new InvalidOperationException($"libtorch from {full} loaded but reports no CUDA device");
        logger.LogInformation("CUDA devices visible to libtorch: {Count}", torch.cuda.device_count());
        var cudnnAttention = CudnnAttention.Bind(handles["libtorch_cpu.so"], out var problem);
        if (cudnnAttention is null)
            logger.LogWarning("cuDNN attention stays as libtorch chose ({Problem}): decoders may pay a plan build per new shape", problem);
        else
            cudnnAttention.Enabled = false;
        return new TorchRuntime(torch.CUDA, $"libtorch {torch.__version__} (CUDA)", full, cudnnAttention);
    }
}

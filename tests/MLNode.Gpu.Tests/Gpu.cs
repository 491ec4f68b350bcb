using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Runtime.Native;
using MLNode.Runtime.Torch;
using static TorchSharp.torch;

namespace MLNode.Gpu.Tests;

/// <summary>
/// Entry of every GPU test: the CUDA libtorch named by <c>MLNODE_LIBTORCH</c> and the native library. Without
/// the variable the test is skipped (CPU machines, CI); with it, a missing kernel library is a failure,
/// because a GPU run that silently tested the references would prove nothing.
/// </summary>
internal static class Gpu
{
    private static readonly Lazy<Device> Cuda = new(Start);

    public static Device Require()
    {
        if (string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable("MLNODE_LIBTORCH")))
            Assert.Skip("no CUDA libtorch: set MLNODE_LIBTORCH (tools/gpu-check does) to run the GPU tests");
        return Cuda.Value;
    }

    private static Device Start()
    {
        var runtime = TorchRuntime.Initialize(Environment.GetEnvironmentVariable("MLNODE_LIBTORCH"), NullLogger.Instance);
        Assert.True(runtime.IsCuda, "MLNODE_LIBTORCH is set but libtorch runs on the CPU");
        Assert.True(NativeKernels.IsAvailable, $"native kernels: {NativeKernels.Description}");
        return runtime.Device;
    }
}

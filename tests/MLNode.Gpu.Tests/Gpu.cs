using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Gpu.Tests;
using MLNode.Runtime.Native;
using MLNode.Runtime.Torch;
using static TorchSharp.torch;

// TorchSharp binds to a libtorch once per process, at its first use: the runtime must start before any test
// touches a tensor, or a CPU-only first use would leave the GPU machine's CUDA libtorch unused.
[assembly: AssemblyFixture(typeof(Gpu.Runtime))]

namespace MLNode.Gpu.Tests;

/// <summary>
/// Entry of every GPU test: the CUDA libtorch named by <c>MLNODE_LIBTORCH</c> and the native library. Without
/// the variable the test is skipped (CPU machines, CI); with it, a missing kernel library is a failure,
/// because a GPU run that silently tested the references would prove nothing.
/// </summary>
internal static class Gpu
{
    private static readonly string? Libtorch = Environment.GetEnvironmentVariable("MLNODE_LIBTORCH");
    private static readonly Lazy<TorchRuntime> Started = new(() => TorchRuntime.Initialize(Libtorch, NullLogger.Instance));

    public static Device Require()
    {
        if (string.IsNullOrWhiteSpace(Libtorch))
            Assert.Skip("no CUDA libtorch: set MLNODE_LIBTORCH (tools/gpu-check does) to run the GPU tests");
        Assert.True(Started.Value.IsCuda, "MLNODE_LIBTORCH is set but libtorch runs on the CPU");
        Assert.True(NativeKernels.IsAvailable, $"native kernels: {NativeKernels.Description}");
        return Started.Value.Device;
    }

    /// <summary>Starts the tensor runtime (CUDA when <c>MLNODE_LIBTORCH</c> is set) before the first test.</summary>
    public sealed class Runtime
    {
        public Runtime() => _ = Started.Value;
    }
}

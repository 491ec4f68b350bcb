using System.Runtime.InteropServices;
using MLNode.Runtime.Torch;
using static TorchSharp.torch;

namespace MLNode.Runtime.Tests.Torch;

/// <summary>
/// The cuDNN-attention switch is reached through mangled at::Context exports that TorchSharp does not bind; the CPU
/// libtorch exports the same Context, so the binding and the flag's round trip are checked here without a GPU.
/// </summary>
public sealed class CudnnAttentionTests
{
    [Fact]
    public void Binds_to_libtorch_and_sets_the_flag()
    {
        using var _ = zeros(1); // TorchSharp has loaded libtorch_cpu: dlopen by its soname returns that copy.
        var library = NativeLibrary.Load("libtorch_cpu.so", typeof(TorchSharp.torch).Assembly, DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories);
        var attention = CudnnAttention.Bind(library, out var problem);
        Assert.Null(problem);
        Assert.NotNull(attention);
        var before = attention.Enabled;
        try
        {
            attention.Enabled = false;
            Assert.False(attention.Enabled);
            attention.Enabled = true;
            Assert.True(attention.Enabled);
        }
        finally
        {
            attention.Enabled = before;
        }
    }
}

using MLNode.Runtime.Native;
using static TorchSharp.torch;

namespace MLNode.Gpu.Tests;

public class NativeKernelsTests
{
    [Fact]
    public void Library_reports_a_cuda_device_on_the_gpu_machine()
    {
        Gpu.Require();
        Assert.Contains("CUDA device", NativeKernels.Description);
        // libtorch's default stream is the legacy null stream; gpu-check builds against c10 and asks it.
        Assert.Equal(0, NativeKernels.Stream);
    }

    [Fact]
    public void Description_says_why_the_references_run_when_the_library_is_missing()
    {
        if (NativeKernels.IsAvailable) Assert.Skip("the native library is present here");
        Assert.False(string.IsNullOrWhiteSpace(NativeKernels.Description));
        Assert.False(NativeKernels.Handles(zeros(4)));
    }

    [Fact]
    public void Pointer_includes_the_storage_offset_and_refuses_strided_views_and_host_tensors()
    {
        var cuda = Gpu.Require();
        using var host = zeros(4);
        Assert.Throws<ArgumentException>(() => NativeKernels.Pointer(host));
        using var t = arange(12, dtype: ScalarType.Float32, device: cuda).reshape(3, 4);
        using var row = t[1];
        Assert.Equal(NativeKernels.Pointer(t) + 4 * sizeof(float), NativeKernels.Pointer(row));
        using var column = t[.., 1];
        Assert.Throws<ArgumentException>(() => NativeKernels.Pointer(column));
    }
}

using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace MLNode.Runtime.Native;

public static partial class NativeKernels
{
    /// <summary>
    /// RMSNorm of the last dimension of <paramref name="x"/> (contiguous, on the GPU) into a new tensor:
    /// <c>w · dtype(x · rsqrt(mean(x²) + eps))</c> with the mean in float32, as Qwen computes it.
    /// </summary>
    public static Tensor RmsNorm(Tensor x, Tensor weight, double eps)
    {
        var width = x.shape[^1];
        if (weight.dtype != x.dtype || weight.numel() != width)
            throw new ArgumentException($"weight must be [{width}] of {x.dtype}, got [{string.Join(", ", weight.shape)}] of {weight.dtype}", nameof(weight));
        var y = empty_like(x);
        Check(mlnode_rms_norm(Pointer(x), Pointer(weight), Pointer(y), x.numel() / width, checked((int)width), (float)eps, (int)x.dtype, Stream),
            nameof(mlnode_rms_norm));
        return y;
    }

    [LibraryImport(LibraryName)]
    private static partial int mlnode_rms_norm(nint x, nint w, nint y, long rows, int width, float eps, int dtype, nint stream);
}

using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace MLNode.Runtime.Native;

public static partial class NativeKernels
{
    /// <summary>
    /// NeoX rotary embedding of <paramref name="x"/> [B, L, H, D] (contiguous, on the GPU) into a new tensor.
    /// <paramref name="cos"/> and <paramref name="sin"/> are [1, L, 1, D] (per position) or [B, 1, 1, D] (per sequence, L = 1).
    /// </summary>
    public static Tensor Rotary(Tensor x, Tensor cos, Tensor sin)
    {
        if (x.dim() != 4)
            throw new ArgumentException($"x must be [B, L, H, D], got [{string.Join(", ", x.shape)}]", nameof(x));
        var (batch, length, heads, dim) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        if (cos.dim() != 4 || !cos.shape.SequenceEqual(sin.shape) || cos.shape[2] != 1 || cos.shape[3] != dim
            || (cos.shape[0] != 1 && cos.shape[0] != batch) || (cos.shape[1] != 1 && cos.shape[1] != length) || cos.dtype != x.dtype || sin.dtype != x.dtype)
            throw new ArgumentException($"cos/sin must be [1 or {batch}, 1 or {length}, 1, {dim}] of {x.dtype}, got [{string.Join(", ", cos.shape)}] of {cos.dtype}", nameof(cos));
        var strideB = cos.shape[0] == 1 ? 0 : cos.shape[1] * dim;
        var strideL = cos.shape[1] == 1 ? 0 : dim;
        var y = empty_like(x);
        Check(mlnode_rotary(Pointer(x), Pointer(cos), Pointer(sin), Pointer(y), checked((int)batch), checked((int)length), checked((int)heads),
            checked((int)dim), strideB, strideL, (int)x.dtype, Stream), nameof(mlnode_rotary));
        return y;
    }

    [LibraryImport(LibraryName)]
    private static partial int mlnode_rotary(nint x, nint cos, nint sin, nint y, int batch, int length, int heads, int dim,
        long tableStrideB, long tableStrideL, int dtype, nint stream);
}

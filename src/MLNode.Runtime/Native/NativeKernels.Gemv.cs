using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace MLNode.Runtime.Native;

public static partial class NativeKernels
{
    private static readonly Lazy<int> GemvMaxRowsValue = new(mlnode_gemv_max_rows);

    /// <summary>Most input rows <see cref="Gemv"/> takes: beyond them the weights are reused enough for a GEMM to win.</summary>
    public static int GemvMaxRows => GemvMaxRowsValue.Value;

    /// <summary>True when <see cref="Gemv"/> can compute <c>x·Wᵀ</c>: a GPU, few rows, one dtype, rows of whole 16-byte vectors.</summary>
    public static bool GemvFits(Tensor x, Tensor weight) =>
        Handles(x) && x.dtype == weight.dtype && weight.is_contiguous() && x.shape[^1] == weight.shape[1]
        && x.numel() / x.shape[^1] is var rows && rows >= 1 && rows <= GemvMaxRows && x.shape[^1] * x.element_size() % 16 == 0;

    /// <summary>
    /// <c>x·Wᵀ (+ b)</c> for x [..., K] of at most <see cref="GemvMaxRows"/> rows and W [N, K], streaming each weight once;
    /// each output's summation order depends only on K (not on the number of rows). Returns [..., N].
    /// </summary>
    public static Tensor Gemv(Tensor x, Tensor weight, Tensor? bias)
    {
        if (!GemvFits(x, weight))
            throw new ArgumentException($"gemv takes ≤ {GemvMaxRows} rows of whole 16-byte vectors in the weight's dtype; got x [{string.Join(", ", x.shape)}] of {x.dtype}, " +
                $"W [{string.Join(", ", weight.shape)}] of {weight.dtype}", nameof(x));
        var (n, k) = (weight.shape[0], weight.shape[1]);
        if (bias is not null && (bias.dtype != x.dtype || bias.numel() != n))
            throw new ArgumentException($"bias must be [{n}] of {x.dtype}", nameof(bias));
        var input = x.contiguous();
        var y = empty([.. x.shape[..^1], n], x.dtype, x.device);
        Check(mlnode_gemv(Pointer(input), Pointer(weight), bias is null ? 0 : Pointer(bias), Pointer(y), checked((int)(x.numel() / k)), checked((int)n), checked((int)k),
            (int)x.dtype, Stream), nameof(mlnode_gemv));
        return y;
    }

    [LibraryImport(LibraryName)] private static partial int mlnode_gemv_max_rows();

    [LibraryImport(LibraryName)]
    private static partial int mlnode_gemv(nint x, nint w, nint bias, nint y, int rows, int n, int k, int dtype, nint stream);
}

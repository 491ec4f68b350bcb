using System.Runtime.InteropServices;
using MLNode.Runtime.Checkpoints;
using static TorchSharp.torch;

namespace MLNode.Runtime.Native;

/// <summary>
/// Block-scaled FP8 E4M3 weights (<c>kernels/fp8_gemm.cu</c>): dequantisation, bit-exact with
/// <see cref="Fp8BlockDequantizer"/>, and y = x·Wᵀ straight from the FP8 bytes for decode-sized batches.
/// The weight is a Byte tensor [out, in] of E4M3 bits, its scales a float32 grid [ceil(out/blockRows), ceil(in/blockCols)].
/// </summary>
public static partial class NativeKernels
{
    /// <summary>The most rows of x <see cref="Fp8Linear"/> takes in one call.</summary>
    public static int Fp8LinearMaxRows => mlnode_fp8_linear_max_rows();

    /// <summary>Writes the dequantised <paramref name="weight"/> into <paramref name="output"/> (same shape; float32, float16 or bfloat16).</summary>
    public static void Fp8Dequantize(Tensor weight, Tensor scaleInv, int blockRows, int blockCols, Tensor output)
    {
        var (rows, cols) = CheckFp8Weight(weight, scaleInv, blockRows, blockCols);
        if (!output.shape.SequenceEqual(weight.shape))
            throw new ArgumentException($"output has shape [{string.Join(", ", output.shape)}], the weight [{rows}, {cols}]", nameof(output));
        Check(mlnode_fp8_dequantize(Pointer(weight), Pointer(scaleInv), rows, cols, blockRows, blockCols, Pointer(output), (int)output.dtype, Stream),
            nameof(mlnode_fp8_dequantize));
    }

    /// <summary>
    /// y [m, out] = x [m, in] · Wᵀ with float32 accumulation, x and y of one dtype. Takes 1 ≤ m ≤
    /// <see cref="Fp8LinearMaxRows"/>, in and <paramref name="blockCols"/> multiples of 16, and 16-byte aligned x
    /// (see <see cref="IsAligned"/>).
    /// </summary>
    public static void Fp8Linear(Tensor x, Tensor weight, Tensor scaleInv, int blockRows, int blockCols, Tensor y)
    {
        var (outFeatures, inFeatures) = CheckFp8Weight(weight, scaleInv, blockRows, blockCols);
        if (x.dim() != 2 || x.shape[1] != inFeatures)
            throw new ArgumentException($"x has shape [{string.Join(", ", x.shape)}], the weight takes [m, {inFeatures}]", nameof(x));
        if (!y.shape.SequenceEqual([x.shape[0], outFeatures]) || y.dtype != x.dtype)
            throw new ArgumentException($"y is {y.dtype} [{string.Join(", ", y.shape)}], needs {x.dtype} [{x.shape[0]}, {outFeatures}]", nameof(y));
        Check(mlnode_fp8_linear(Pointer(x), Pointer(weight), Pointer(scaleInv), x.shape[0], inFeatures, outFeatures, blockRows, blockCols,
            Pointer(y), (int)x.dtype, Stream), nameof(mlnode_fp8_linear));
    }

    /// <summary>True when the tensor's data starts on a 16-byte boundary, as the vectorised loads need.</summary>
    public static bool IsAligned(Tensor tensor) => Pointer(tensor) % 16 == 0;

    private static (long Rows, long Cols) CheckFp8Weight(Tensor weight, Tensor scaleInv, int blockRows, int blockCols)
    {
        if (weight.dtype != ScalarType.Byte || weight.dim() != 2)
            throw new ArgumentException($"the weight must be a 2-D Byte tensor of E4M3 bits, got {weight.dtype} [{string.Join(", ", weight.shape)}]", nameof(weight));
        var (rows, cols) = (weight.shape[0], weight.shape[1]);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockRows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockCols);
        long[] grid = [Fp8BlockDequantizer.ScaleBlocks(checked((int)rows), blockRows), Fp8BlockDequantizer.ScaleBlocks(checked((int)cols), blockCols)];
        if (scaleInv.dtype != ScalarType.Float32 || !scaleInv.shape.SequenceEqual(grid))
            throw new ArgumentException(
                $"scale_inv is {scaleInv.dtype} [{string.Join(", ", scaleInv.shape)}]; [{rows}, {cols}] in {blockRows}×{blockCols} blocks needs Float32 [{grid[0]}, {grid[1]}]",
                nameof(scaleInv));
        return (rows, cols);
    }

    [LibraryImport(LibraryName)] private static partial int mlnode_fp8_linear_max_rows();

    [LibraryImport(LibraryName)]
    private static partial int mlnode_fp8_dequantize(
        nint weight, nint scaleInv, long rows, long cols, int blockRows, int blockCols, nint output, int outputDType, nint stream);

    [LibraryImport(LibraryName)]
    private static partial int mlnode_fp8_linear(
        nint x, nint weight, nint scaleInv, long m, long inFeatures, long outFeatures, int blockRows, int blockCols, nint y, int dtype, nint stream);
}

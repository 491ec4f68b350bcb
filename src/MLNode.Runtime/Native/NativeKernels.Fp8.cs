using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using MLNode.Runtime.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Runtime.Native;

/// <summary>
/// Block-scaled FP8 E4M3 weights (<c>kernels/fp8_gemm.cu</c>): dequantisation, bit-exact with
/// <see cref="Fp8BlockDequantizer"/>, and y = x·Wᵀ straight from the FP8 bytes for decode-sized batches, on CUDA cores
/// (<see cref="Fp8Linear"/>) or, for bfloat16/float16 x, on tensor cores (<see cref="Fp8LinearMma"/>,
/// <c>kernels/fp8_linear_mma.cu</c>).
/// The weight is a Byte tensor [out, in] of E4M3 bits, its scales a float32 grid [ceil(out/blockRows), ceil(in/blockCols)].
/// For larger batches on Hopper (<c>kernels/fp8_block_gemm.cu</c>): activations quantised per (row, 128-column group),
/// bit-exact with <see cref="Fp8GroupQuantizer"/>, and the FP8 × FP8 GEMM with cuBLASLt's block scaling.
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

    /// <summary>The most rows of x <see cref="Fp8LinearMma"/> takes in one call.</summary>
    public static int Fp8LinearMmaMaxRows => mlnode_fp8_linear_mma_max_rows();

    private static readonly ConcurrentDictionary<int, (bool Available, string Reason)> Fp8LinearMmaDevices = new();

    /// <summary>
    /// Whether <paramref name="device"/> runs <see cref="Fp8LinearMma"/> (a CUDA device of compute capability 8.0 or
    /// newer), and if not, why. Fixed for a process. A CUDA device without an index is the current one.
    /// </summary>
    public static (bool Available, string Reason) Fp8LinearMmaSupport(Device device)
    {
        if (device.type != DeviceType.CUDA) return (false, $"{device} is not a CUDA device");
        return Fp8LinearMmaDevices.GetOrAdd(device.index, index =>
        {
            var status = mlnode_fp8_linear_mma_available(index);
            if (status == Unsupported) return (false, Marshal.PtrToStringUTF8(mlnode_last_error()) ?? "");
            Check(status, nameof(mlnode_fp8_linear_mma_available));
            return (true, "");
        });
    }

    /// <summary>
    /// y [m, out] = x [m, in] · Wᵀ on tensor cores, x and y bfloat16 or float16: W's E4M3 values exactly, float32 sums per
    /// 128-column block scaled by their scale_inv and added in float32, one rounding to x's dtype; the same bits for the
    /// same inputs on the same GPU. Takes 1 ≤ m ≤ <see cref="Fp8LinearMmaMaxRows"/>, in and <paramref name="blockCols"/>
    /// multiples of 128, 16-byte aligned x and weight (see <see cref="IsAligned"/>) and <see cref="Fp8LinearMmaSupport"/>
    /// on the weight's device.
    /// </summary>
    public static void Fp8LinearMma(Tensor x, Tensor weight, Tensor scaleInv, int blockRows, int blockCols, Tensor y)
    {
        var (outFeatures, inFeatures) = CheckFp8Weight(weight, scaleInv, blockRows, blockCols);
        if (x.dim() != 2 || x.shape[1] != inFeatures)
            throw new ArgumentException($"x has shape [{string.Join(", ", x.shape)}], the weight takes [m, {inFeatures}]", nameof(x));
        if (!y.shape.SequenceEqual([x.shape[0], outFeatures]) || y.dtype != x.dtype)
            throw new ArgumentException($"y is {y.dtype} [{string.Join(", ", y.shape)}], needs {x.dtype} [{x.shape[0]}, {outFeatures}]", nameof(y));
        var rows = x.shape[0];
        var xPointer = Pointer(x); // makes x's GPU current: the scratch size depends on its SM count
        Check(mlnode_fp8_linear_mma_scratch_bytes(rows, inFeatures, outFeatures, out var scratchBytes), nameof(mlnode_fp8_linear_mma_scratch_bytes));
        // The k splits' partial sums, from libtorch's caching allocator: freed with the call, reused by the next.
        using var scratch = scratchBytes > 0 ? empty([scratchBytes], ScalarType.Byte, x.device) : null;
        Check(mlnode_fp8_linear_mma(xPointer, Pointer(weight), Pointer(scaleInv), rows, inFeatures, outFeatures, blockRows, blockCols,
                Pointer(y), (int)x.dtype, scratch is null ? 0 : Pointer(scratch), scratchBytes, Stream),
            nameof(mlnode_fp8_linear_mma));
    }

    private static readonly ConcurrentDictionary<int, (bool Available, string Reason)> Fp8BlockGemmDevices = new();

    /// <summary>
    /// Writes <paramref name="x"/> [rows, cols] (float32, float16 or bfloat16) quantised per (row, 128-column group) as
    /// <see cref="Fp8GroupQuantizer"/> does: E4M3 codes into <paramref name="codes"/> (Byte [paddedRows, cols], paddedRows ≥
    /// rows; the extra rows become zeros) and the scales into <paramref name="scales"/> (Float32 [ceil(cols/128), paddedRows]).
    /// </summary>
    public static void Fp8QuantizeGroups(Tensor x, Tensor codes, Tensor scales)
    {
        if (x.dim() != 2)
            throw new ArgumentException($"x must be 2-D, got [{string.Join(", ", x.shape)}]", nameof(x));
        var (rows, cols) = (x.shape[0], x.shape[1]);
        if (codes.dtype != ScalarType.Byte || codes.dim() != 2 || codes.shape[0] < rows || codes.shape[1] != cols)
            throw new ArgumentException($"codes is {codes.dtype} [{string.Join(", ", codes.shape)}], needs Byte [≥ {rows}, {cols}]", nameof(codes));
        long[] grid = [Fp8GroupQuantizer.Groups(checked((int)cols)), codes.shape[0]];
        if (scales.dtype != ScalarType.Float32 || !scales.shape.SequenceEqual(grid))
            throw new ArgumentException($"scales is {scales.dtype} [{string.Join(", ", scales.shape)}], needs Float32 [{grid[0]}, {grid[1]}]", nameof(scales));
        Check(mlnode_fp8_quantize_groups(Pointer(x), rows, cols, (int)x.dtype, codes.shape[0], Pointer(codes), Pointer(scales), Stream),
            nameof(mlnode_fp8_quantize_groups));
    }

    /// <summary>
    /// Whether <paramref name="device"/> runs <see cref="Fp8BlockGemm"/> (a CUDA device of compute capability 9.x,
    /// cuBLASLt 12.9 or newer, a library built with CUDA 12.9 or newer), and if not, why. Fixed for a process, so every
    /// caller on the same GPU and library takes the same path. A CUDA device without an index is the current one.
    /// </summary>
    public static (bool Available, string Reason) Fp8BlockGemmSupport(Device device)
    {
        if (device.type != DeviceType.CUDA) return (false, $"{device} is not a CUDA device");
        return Fp8BlockGemmDevices.GetOrAdd(device.index, index =>
        {
            var status = mlnode_fp8_block_gemm_available(index);
            if (status == Unsupported) return (false, Marshal.PtrToStringUTF8(mlnode_last_error()) ?? "");
            Check(status, nameof(mlnode_fp8_block_gemm_available));
            return (true, "");
        });
    }

    /// <summary>
    /// y [n, out] = (codes × xScales) · (weight × scaleInv)ᵀ on FP8 tensor cores with float32 accumulation: codes [n, in]
    /// and xScales [in/128, n] from <see cref="Fp8QuantizeGroups"/> with n a multiple of 4, weight [out, in] E4M3 in
    /// 128×128 scale blocks, y of float32, float16 or bfloat16. Needs in a multiple of 512, out a multiple of 16, 16-byte
    /// aligned tensors and <see cref="Fp8BlockGemmSupport"/> on the current device.
    /// </summary>
    public static void Fp8BlockGemm(Tensor codes, Tensor xScales, Tensor weight, Tensor scaleInv, Tensor y)
    {
        var (outFeatures, inFeatures) = CheckFp8Weight(weight, scaleInv, Fp8GroupQuantizer.GroupSize, Fp8GroupQuantizer.GroupSize);
        if (codes.dtype != ScalarType.Byte || codes.dim() != 2 || codes.shape[1] != inFeatures)
            throw new ArgumentException($"codes is {codes.dtype} [{string.Join(", ", codes.shape)}], the weight takes Byte [n, {inFeatures}]", nameof(codes));
        var rows = codes.shape[0];
        long[] grid = [Fp8GroupQuantizer.Groups(checked((int)inFeatures)), rows];
        if (xScales.dtype != ScalarType.Float32 || !xScales.shape.SequenceEqual(grid))
            throw new ArgumentException($"xScales is {xScales.dtype} [{string.Join(", ", xScales.shape)}], needs Float32 [{grid[0]}, {grid[1]}]", nameof(xScales));
        if (!y.shape.SequenceEqual([rows, outFeatures]))
            throw new ArgumentException($"y has shape [{string.Join(", ", y.shape)}], needs [{rows}, {outFeatures}]", nameof(y));
        Check(mlnode_fp8_block_gemm(Pointer(codes), Pointer(xScales), Pointer(weight), Pointer(scaleInv), rows, inFeatures, outFeatures,
            Pointer(y), (int)y.dtype, Stream), nameof(mlnode_fp8_block_gemm));
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

    private const int Unsupported = 3;

    [LibraryImport(LibraryName)] private static partial int mlnode_fp8_linear_max_rows();

    [LibraryImport(LibraryName)]
    private static partial int mlnode_fp8_quantize_groups(nint x, long rows, long cols, int dtype, long paddedRows, nint codes, nint scales, nint stream);

    [LibraryImport(LibraryName)] private static partial int mlnode_fp8_block_gemm_available(int device);

    [LibraryImport(LibraryName)]
    private static partial int mlnode_fp8_block_gemm(
        nint codes, nint xScales, nint weight, nint weightScales, long rows, long inFeatures, long outFeatures, nint y, int dtype, nint stream);

    [LibraryImport(LibraryName)]
    private static partial int mlnode_fp8_dequantize(
        nint weight, nint scaleInv, long rows, long cols, int blockRows, int blockCols, nint output, int outputDType, nint stream);

    [LibraryImport(LibraryName)] private static partial int mlnode_fp8_linear_mma_max_rows();

    [LibraryImport(LibraryName)] private static partial int mlnode_fp8_linear_mma_available(int device);

    [LibraryImport(LibraryName)]
    private static partial int mlnode_fp8_linear_mma_scratch_bytes(long m, long inFeatures, long outFeatures, out long bytes);

    [LibraryImport(LibraryName)]
    private static partial int mlnode_fp8_linear_mma(
        nint x, nint weight, nint scaleInv, long m, long inFeatures, long outFeatures, int blockRows, int blockCols, nint y, int dtype,
        nint scratch, long scratchBytes, nint stream);

    [LibraryImport(LibraryName)]
    private static partial int mlnode_fp8_linear(
        nint x, nint weight, nint scaleInv, long m, long inFeatures, long outFeatures, int blockRows, int blockCols, nint y, int dtype, nint stream);
}

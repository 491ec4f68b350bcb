using MLNode.Runtime.Checkpoints;
using MLNode.Runtime.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>
/// A linear weight W [out, in] kept as a block-scaled FP8 checkpoint stores it (DeepSeek-V3, Qwen3-FP8): E4M3 bits
/// (a Byte tensor) and a float32 <c>weight_scale_inv</c> [ceil(out/blockRows), ceil(in/blockCols)], half the memory
/// of bf16. W[r, c] = e4m3(bits[r, c]) × scale_inv[r / blockRows, c / blockCols] (see <see cref="Fp8BlockDequantizer"/>).
/// </summary>
/// <remarks>
/// On a GPU with the native kernels, decode-sized batches multiply straight from the FP8 bytes: bfloat16/float16 x of
/// <see cref="MmaMinRows"/> to <see cref="MmaMaxRows"/> rows on tensor cores (128-aligned in and scale blocks, compute
/// capability 8.0+), otherwise up to <see cref="FusedMaxRows"/> rows on CUDA cores; both keep W exact and sum in
/// float32 per scale block, the dense product up to float32 summation order. Larger batches, on Hopper with cuBLAS 12.9
/// or newer and 128×128 blocks, quantise x per (row, 128-column group) to FP8 and run the FP8 GEMM on tensor cores with
/// cuBLASLt's block scaling: what vLLM computes for these checkpoints (w8a8 block FP8), so y differs from the dense
/// product by x's quantisation. Elsewhere they dequantise W and run the dense GEMM; the dequantised W is a temporary
/// freed right after its GEMM, so the caching allocator hands the same block to the next layer's: one dense weight at a
/// time, not one per layer. Which path runs depends only on the GPU, the library and the shapes, so every node with the
/// same GPU computes the same bits. On the CPU the C# reference dequantises and multiplies, the same math as the dense
/// path.
/// </remarks>
public sealed class Fp8BlockWeight
{
    /// <summary>
    /// Rows of x up to which the CUDA-core fused kernel runs where the tensor-core kernel cannot (at most the kernel's
    /// <see cref="NativeKernels.Fp8LinearMaxRows"/>). Measured on an H100 by benchmarks/kernels/fp8.py against bf16
    /// F.linear on Qwen3 shapes: 1.21–1.38× faster at one row, 1.0–1.27× at 2, 0.73–1.43× at 4, 0.43–1.2× at 8 and
    /// 0.29–1.0× at 16, where the CUDA-core kernel is compute-bound; it beat dequantise + F.linear up to 8 rows on every
    /// shape (16 on some), so 8.
    /// </summary>
    public const int FusedMaxRows = 8;

    /// <summary>
    /// Rows of x from which the tensor-core kernel takes over from the fused one. For one or two rows an 8-row mma tile
    /// carries mostly padding: measured on an H100 (benchmarks/kernels/fp8.py, both CUDA-graph timed), the tensor-core
    /// kernel ran at 0.62–1.26× the fused one at 2 rows (slower on four of the six Qwen3 shapes) and 0.83–1.59× at 4 rows
    /// (faster on four), so 3.
    /// </summary>
    public const int MmaMinRows = 3;

    /// <summary>
    /// Rows of x up to which the tensor-core kernel runs (its <see cref="NativeKernels.Fp8LinearMmaMaxRows"/>): it reads W
    /// once whatever the rows, so up to its limit it moves half the bytes of the bf16 GEMM it replaces.
    /// </summary>
    public const int MmaMaxRows = 64;

    public Fp8BlockWeight(Tensor bits, Tensor scaleInv, int blockRows = Fp8BlockDequantizer.DefaultBlockSize, int blockCols = Fp8BlockDequantizer.DefaultBlockSize)
    {
        if (bits.dtype != ScalarType.Byte || bits.dim() != 2)
            throw new ArgumentException($"FP8 weight bits must be a 2-D Byte tensor, got {bits.dtype} [{string.Join(", ", bits.shape)}]", nameof(bits));
        long[] grid = [Fp8BlockDequantizer.ScaleBlocks((int)bits.shape[0], blockRows), Fp8BlockDequantizer.ScaleBlocks((int)bits.shape[1], blockCols)];
        if (scaleInv.dtype != ScalarType.Float32 || !scaleInv.shape.SequenceEqual(grid))
            throw new ArgumentException(
                $"weight_scale_inv is {scaleInv.dtype} [{string.Join(", ", scaleInv.shape)}]; [{string.Join(", ", bits.shape)}] in {blockRows}×{blockCols} blocks needs Float32 [{grid[0]}, {grid[1]}]",
                nameof(scaleInv));
        Bits = new Parameter(bits, requires_grad: false);
        ScaleInv = new Parameter(scaleInv, requires_grad: false);
        (BlockRows, BlockCols) = (blockRows, blockCols);
        // What the block-scaled GEMM needs of the weight never changes: decided once, not on every forward.
        _blockScaledWeight = new Lazy<bool>(() =>
            BlockRows == Fp8GroupQuantizer.GroupSize && BlockCols == Fp8GroupQuantizer.GroupSize
            && InFeatures % 512 == 0 && OutFeatures % 16 == 0
            && NativeKernels.IsAligned(Bits) && NativeKernels.IsAligned(ScaleInv)
            && NativeKernels.Fp8BlockGemmSupport(Bits.device).Available);
        _mmaWeight = new Lazy<bool>(() =>
            InFeatures % 128 == 0 && BlockCols % 128 == 0 && NativeKernels.IsAligned(Bits)
            && NativeKernels.Fp8LinearMmaSupport(Bits.device).Available);
    }

    private readonly Lazy<bool> _blockScaledWeight;
    private readonly Lazy<bool> _mmaWeight;

    /// <summary>E4M3 bits [out, in].</summary>
    public Parameter Bits { get; }

    /// <summary>The per-block scales (the checkpoint's <c>weight_scale_inv</c>).</summary>
    public Parameter ScaleInv { get; }

    public int BlockRows { get; }
    public int BlockCols { get; }
    public long OutFeatures => Bits.shape[0];
    public long InFeatures => Bits.shape[1];

    /// <summary>y = x Wᵀ (+ b) over the last dimension of <paramref name="x"/>, in x's dtype.</summary>
    public Tensor Linear(Tensor x, Tensor? bias)
    {
        using var scope = NewDisposeScope();
        var rows = x.numel() / InFeatures;
        var path = Takes(rows, x.dtype);
        var flat = path is Path.Dense ? null : x.reshape(rows, InFeatures).contiguous();
        if (flat is null || (path is (Path.Fused or Path.Mma) && !NativeKernels.IsAligned(flat)))
        {
            using var w = Dequantize(x.dtype);
            return nn.functional.linear(x, w, bias).MoveToOuterDisposeScope();
        }
        var y = path switch
        {
            Path.Mma => MmaProduct(flat),
            Path.Fused => FusedProduct(flat),
            _ => BlockScaledProduct(flat),
        };
        if (bias is not null) y.add_(bias);
        return y.view([.. x.shape[..^1], OutFeatures]).MoveToOuterDisposeScope();
    }

    /// <summary>W in <paramref name="dtype"/> on the weight's device: the native kernel, or the C# reference (bit-identical).</summary>
    public Tensor Dequantize(ScalarType dtype)
    {
        if (NativeKernels.Handles(Bits))
        {
            var w = empty(OutFeatures, InFeatures, dtype, Bits.device);
            NativeKernels.Fp8Dequantize(Bits, ScaleInv, BlockRows, BlockCols, w);
            return w;
        }
        using var bits = Bits.cpu().contiguous();
        using var scales = ScaleInv.cpu().contiguous();
        return Fp8BlockDequantizer.ToTensor(
            bits.bytes, scales.data<float>().ToArray(), (int)OutFeatures, (int)InFeatures, dtype, Bits.device, BlockRows, BlockCols);
    }

    private enum Path { Dense, Fused, Mma, BlockScaled }

    private Path Takes(long rows, ScalarType dtype)
    {
        if (rows <= 0 || !NativeKernels.Handles(Bits)) return Path.Dense;
        if (rows is >= MmaMinRows and <= MmaMaxRows && dtype is (ScalarType.BFloat16 or ScalarType.Float16) && _mmaWeight.Value)
            return Path.Mma;
        if (rows <= FusedMaxRows) return InFeatures % 16 == 0 && BlockCols % 16 == 0 ? Path.Fused : Path.Dense;
        return rows <= int.MaxValue - 3 && _blockScaledWeight.Value ? Path.BlockScaled : Path.Dense;
    }

    private Tensor MmaProduct(Tensor x)
    {
        var y = empty(x.shape[0], OutFeatures, x.dtype, x.device);
        NativeKernels.Fp8LinearMma(x, Bits, ScaleInv, BlockRows, BlockCols, y);
        return y;
    }

    private Tensor FusedProduct(Tensor x)
    {
        var y = empty(x.shape[0], OutFeatures, x.dtype, x.device);
        NativeKernels.Fp8Linear(x, Bits, ScaleInv, BlockRows, BlockCols, y);
        return y;
    }

    /// <summary>x [rows, in] · Wᵀ with x quantised per (row, 128-column group); the rows cuBLASLt pads to a multiple of 4 are cut off.</summary>
    private Tensor BlockScaledProduct(Tensor x)
    {
        var rows = (int)x.shape[0];
        var padded = Fp8GroupQuantizer.PaddedRows(rows);
        var codes = empty(padded, InFeatures, ScalarType.Byte, x.device);
        var scales = empty(Fp8GroupQuantizer.Groups((int)InFeatures), padded, ScalarType.Float32, x.device);
        NativeKernels.Fp8QuantizeGroups(x, codes, scales);
        var y = empty(padded, OutFeatures, x.dtype, x.device);
        NativeKernels.Fp8BlockGemm(codes, scales, Bits, ScaleInv, y);
        return y.narrow(0, 0, rows);
    }
}

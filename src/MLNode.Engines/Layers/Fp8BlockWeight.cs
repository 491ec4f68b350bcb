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
/// On a GPU with the native kernels, decode-sized batches (up to <see cref="FusedMaxRows"/> rows) multiply straight
/// from the FP8 bytes; larger ones dequantise W and run the dense GEMM, where tensor cores make the conversion cheap
/// next to the multiply. The dequantised W is a temporary freed right after its GEMM, so the caching allocator
/// hands the same block to the next layer's: one dense weight at a time, not one per layer. Elsewhere the C#
/// reference dequantises and multiplies, the same math.
/// </remarks>
public sealed class Fp8BlockWeight
{
    /// <summary>
    /// Rows of x up to which the fused kernel beats dequantise + dense GEMM (at most the kernel's
    /// <see cref="NativeKernels.Fp8LinearMaxRows"/>); benchmarks/kernels/fp8.py measures where the two cross.
    /// </summary>
    public const int FusedMaxRows = 16;

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
    }

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
        var flat = FusedTakes(rows) ? x.reshape(rows, InFeatures).contiguous() : null;
        if (flat is null || !NativeKernels.IsAligned(flat))
        {
            using var w = Dequantize(x.dtype);
            return nn.functional.linear(x, w, bias).MoveToOuterDisposeScope();
        }
        var y = empty(rows, OutFeatures, x.dtype, x.device);
        NativeKernels.Fp8Linear(flat, Bits, ScaleInv, BlockRows, BlockCols, y);
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

    private bool FusedTakes(long rows) =>
        rows is > 0 and <= FusedMaxRows && NativeKernels.Handles(Bits) && InFeatures % 16 == 0 && BlockCols % 16 == 0;
}

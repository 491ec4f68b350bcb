using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Runtime.Checkpoints;

/// <summary>
/// Block-scaled FP8 as DeepSeek-V3 and Qwen3-FP8 checkpoints store it: a weight [rows, cols] of E4M3 bits and a
/// float32 <c>weight_scale_inv</c> [ceil(rows/blockRows), ceil(cols/blockCols)]; each weight is its FP8 value times
/// the scale of the block it falls in (the edge blocks are partial). Reference implementation for the native kernel.
/// </summary>
public static class Fp8BlockDequantizer
{
    public const int DefaultBlockSize = 128;

    public static void Dequantize(
        ReadOnlySpan<byte> weight, ReadOnlySpan<float> scaleInv, int rows, int cols, Span<float> output,
        int blockRows = DefaultBlockSize, int blockCols = DefaultBlockSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockRows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockCols);
        var count = (long)rows * cols;
        if (weight.Length != count || output.Length != count)
            throw new ArgumentException($"weight holds {weight.Length} and output {output.Length} elements; [{rows},{cols}] needs {count}");
        var scaleCols = ScaleBlocks(cols, blockCols);
        if (scaleInv.Length != (long)ScaleBlocks(rows, blockRows) * scaleCols)
            throw new ArgumentException(
                $"weight_scale_inv holds {scaleInv.Length} scales; [{rows},{cols}] in {blockRows}×{blockCols} blocks needs [{ScaleBlocks(rows, blockRows)},{scaleCols}]");

        for (var row = 0; row < rows; row++)
        {
            var scaleRow = scaleInv.Slice(row / blockRows * scaleCols, scaleCols);
            var source = weight.Slice(row * cols, cols);
            var target = output.Slice(row * cols, cols);
            for (var col = 0; col < cols; col++)
                target[col] = Fp8E4M3.ToFloat(source[col]) * scaleRow[col / blockCols];
        }
    }

    /// <summary>
    /// <see cref="Dequantize(ReadOnlySpan{byte}, ReadOnlySpan{float}, int, int, Span{float}, int, int)"/> into a new
    /// [rows, cols] tensor of <paramref name="dtype"/> on <paramref name="device"/> (rounded once from float32).
    /// </summary>
    public static Tensor ToTensor(
        ReadOnlySpan<byte> weight, ReadOnlySpan<float> scaleInv, int rows, int cols, ScalarType dtype, Device? device = null,
        int blockRows = DefaultBlockSize, int blockCols = DefaultBlockSize)
    {
        var values = new float[(long)rows * cols];
        Dequantize(weight, scaleInv, rows, cols, values, blockRows, blockCols);
        return TorchTensorLoader.ToDeviceAndType(torch.tensor(values, [rows, cols]), device, dtype);
    }

    /// <summary>How many blocks of <paramref name="blockSize"/> cover <paramref name="length"/>: the scale tensor's extent.</summary>
    public static int ScaleBlocks(int length, int blockSize) => (length + blockSize - 1) / blockSize;
}

using TorchSharp;

namespace MLNode.Runtime.Checkpoints;

/// <summary>
/// Raw access to the memory of a contiguous CPU tensor. TorchSharp exposes it only as a
/// <see cref="Span{T}"/> (<c>Tensor.bytes</c>), which stops at 2 GiB; larger tensors (a big
/// vocabulary's embedding) are walked through flat views of at most <see cref="DefaultChunkBytes"/>.
/// </summary>
internal static class TensorByteChunks
{
    public const long DefaultChunkBytes = 1L << 30;

    public delegate void ChunkAction(Span<byte> chunk, long byteOffset);

    public static void ForEach(torch.Tensor tensor, ChunkAction action, long maxChunkBytes = DefaultChunkBytes)
    {
        if (tensor.device_type != DeviceType.CPU || !tensor.is_contiguous())
            throw new ArgumentException("raw bytes need a contiguous CPU tensor", nameof(tensor));
        var count = tensor.numel();
        if (count == 0)
            return;
        var elementSize = tensor.element_size();
        var elementsPerChunk = Math.Max(1, maxChunkBytes / elementSize);
        using var flat = tensor.reshape(-1);
        for (var start = 0L; start < count; start += elementsPerChunk)
        {
            using var chunk = flat.narrow(0, start, Math.Min(elementsPerChunk, count - start));
            action(chunk.bytes, start * elementSize);
        }
    }
}

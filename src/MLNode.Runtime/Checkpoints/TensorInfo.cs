namespace MLNode.Runtime.Checkpoints;

/// <summary>One tensor of a safetensors file: its element type, shape and where its bytes lie in the file.</summary>
/// <param name="FileOffset">Absolute position of the first byte in the file (header included).</param>
/// <param name="ByteLength">Number of bytes: element count × element size.</param>
public sealed record TensorInfo(string Name, SafetensorsDType DType, long[] Shape, long FileOffset, long ByteLength)
{
    public long ElementCount => ByteLength / DType.ElementSize();
}

namespace MLNode.Runtime.Checkpoints;

/// <summary>A tensor to write: its name, dtype, shape and raw little-endian bytes (row-major).</summary>
public sealed record SafetensorsEntry(string Name, SafetensorsDType DType, long[] Shape, ReadOnlyMemory<byte> Data);

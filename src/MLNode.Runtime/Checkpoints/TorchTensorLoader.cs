using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Runtime.Checkpoints;

/// <summary>Turns mapped safetensors bytes into TorchSharp tensors: one copy into fresh CPU storage, then device and dtype.</summary>
internal static class TorchTensorLoader
{
    /// <summary>
    /// The tensor, or only <paramref name="slice"/> of it: the bytes outside the slice are never copied, so a rank that
    /// holds a shard of a weight never has the whole weight in memory.
    /// </summary>
    public static Tensor Load(SafetensorsFile file, TensorInfo info, Device? device, ScalarType? dtype, TensorSlice? slice = null)
    {
        var stored = SafetensorsTorchTypes.ToScalarType(info.DType);
        if (info.DType is SafetensorsDType.F8E4M3 or SafetensorsDType.F8E5M2 && dtype is { } requested && requested != ScalarType.Byte)
            throw new NotSupportedException(
                $"{file.Path}: tensor '{info.Name}' is {info.DType.FormatName()}, which TorchSharp cannot convert; load it as Byte or dequantise it (Checkpoint.LoadFp8BlockScaled)");

        var runs = Runs.Of(info, slice);
        var tensor = empty(slice?.ShapeOf(info.Shape) ?? info.Shape, stored, CPU);
        try
        {
            TensorByteChunks.ForEach(tensor, (chunk, offset) => runs.CopyTo(file, info.Name, chunk, offset));
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
        return ToDeviceAndType(tensor, device, dtype);
    }

    /// <summary>
    /// Moves a fresh CPU tensor to <paramref name="device"/> and converts it to <paramref name="dtype"/>, disposing the
    /// intermediates. The move comes first: libtorch converts CPU→GPU copies on the CPU, which is slower and sends
    /// more bytes (bf16 → fp32 doubles them).
    /// </summary>
    public static Tensor ToDeviceAndType(Tensor tensor, Device? device, ScalarType? dtype)
    {
        try
        {
            if (device is not null && device.type != DeviceType.CPU)
                tensor = Replace(tensor, tensor.to(device));
            if (dtype is { } type && type != tensor.dtype)
                tensor = Replace(tensor, tensor.to_type(type));
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A slice of a row-major tensor as equal runs of contiguous bytes: for every index of the dimensions before the
    /// slice's, the sliced indices with everything after them. A whole tensor is one run.
    /// </summary>
    private readonly record struct Runs(long Count, long Bytes, long Stride, long First)
    {
        public static Runs Of(TensorInfo info, TensorSlice? slice)
        {
            if (slice is null) return new Runs(1, info.ByteLength, info.ByteLength, 0);
            slice.ShapeOf(info.Shape);
            var inner = info.Shape.Skip(slice.Dim + 1).Aggregate(1L, (a, b) => a * b) * info.DType.ElementSize();
            var outer = info.Shape.Take(slice.Dim).Aggregate(1L, (a, b) => a * b);
            return new Runs(outer, slice.Length * inner, info.Shape[slice.Dim] * inner, slice.Start * inner);
        }

        /// <summary>Fills <paramref name="chunk"/>, the bytes of the slice from <paramref name="offset"/> on, from the file.</summary>
        public void CopyTo(SafetensorsFile file, string name, Span<byte> chunk, long offset)
        {
            while (!chunk.IsEmpty)
            {
                var (run, within) = (offset / Bytes, offset % Bytes);
                var length = (int)Math.Min(Bytes - within, chunk.Length);
                file.GetBytes(name, First + run * Stride + within, length).CopyTo(chunk);
                chunk = chunk[length..];
                offset += length;
            }
        }
    }

    private static Tensor Replace(Tensor old, Tensor replacement)
    {
        old.Dispose();
        return replacement;
    }
}

using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Runtime.Checkpoints;

/// <summary>Turns mapped safetensors bytes into TorchSharp tensors: one copy into fresh CPU storage, then device and dtype.</summary>
internal static class TorchTensorLoader
{
    public static Tensor Load(SafetensorsFile file, TensorInfo info, Device? device, ScalarType? dtype)
    {
        var stored = SafetensorsTorchTypes.ToScalarType(info.DType);
        if (info.DType is SafetensorsDType.F8E4M3 or SafetensorsDType.F8E5M2 && dtype is { } requested && requested != ScalarType.Byte)
            throw new NotSupportedException(
                $"{file.Path}: tensor '{info.Name}' is {info.DType.FormatName()}, which TorchSharp cannot convert; load it as Byte or dequantise it (Checkpoint.LoadFp8BlockScaled)");

        var tensor = empty(info.Shape, stored, CPU);
        try
        {
            TensorByteChunks.ForEach(tensor, (chunk, offset) => file.GetBytes(info.Name, offset, chunk.Length).CopyTo(chunk));
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

    private static Tensor Replace(Tensor old, Tensor replacement)
    {
        old.Dispose();
        return replacement;
    }
}

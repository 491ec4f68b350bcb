using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Runtime.Checkpoints;

/// <summary>Correspondence between safetensors dtypes and TorchSharp scalar types.</summary>
public static class SafetensorsTorchTypes
{
    /// <summary>
    /// The TorchSharp type a tensor of <paramref name="dtype"/> loads as. TorchSharp has no FP8 types:
    /// FP8 tensors load as <see cref="ScalarType.Byte"/> holding the raw bits, for native kernels or
    /// <see cref="Fp8E4M3"/>. TorchSharp has no unsigned types wider than a byte either.
    /// </summary>
    public static ScalarType ToScalarType(SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.Bool => ScalarType.Bool,
        SafetensorsDType.U8 or SafetensorsDType.F8E4M3 or SafetensorsDType.F8E5M2 => ScalarType.Byte,
        SafetensorsDType.I8 => ScalarType.Int8,
        SafetensorsDType.I16 => ScalarType.Int16,
        SafetensorsDType.I32 => ScalarType.Int32,
        SafetensorsDType.I64 => ScalarType.Int64,
        SafetensorsDType.F16 => ScalarType.Float16,
        SafetensorsDType.BF16 => ScalarType.BFloat16,
        SafetensorsDType.F32 => ScalarType.Float32,
        SafetensorsDType.F64 => ScalarType.Float64,
        _ => throw new NotSupportedException($"TorchSharp has no tensor type for safetensors dtype {dtype.FormatName()}"),
    };

    /// <summary>The safetensors dtype a TorchSharp tensor is written as (a Byte tensor is written as U8).</summary>
    public static SafetensorsDType FromScalarType(ScalarType type) => type switch
    {
        ScalarType.Bool => SafetensorsDType.Bool,
        ScalarType.Byte => SafetensorsDType.U8,
        ScalarType.Int8 => SafetensorsDType.I8,
        ScalarType.Int16 => SafetensorsDType.I16,
        ScalarType.Int32 => SafetensorsDType.I32,
        ScalarType.Int64 => SafetensorsDType.I64,
        ScalarType.Float16 => SafetensorsDType.F16,
        ScalarType.BFloat16 => SafetensorsDType.BF16,
        ScalarType.Float32 => SafetensorsDType.F32,
        ScalarType.Float64 => SafetensorsDType.F64,
        _ => throw new NotSupportedException($"safetensors has no dtype for TorchSharp type {type}"),
    };
}

namespace MLNode.Runtime.Checkpoints;

/// <summary>
/// Element types of the safetensors format. The declaration order is the reference library's
/// (increasing alignment); <see cref="SafetensorsWriter"/> relies on it to lay tensors out as the
/// reference writer does: larger elements first, so every tensor stays aligned to its element size.
/// </summary>
public enum SafetensorsDType
{
    Bool,
    U8,
    I8,
    F8E5M2,
    F8E4M3,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
}

/// <summary>Names and sizes of <see cref="SafetensorsDType"/> as the file format spells them.</summary>
public static class SafetensorsDTypes
{
    private static readonly (SafetensorsDType DType, string Name, int Size)[] Table =
    [
        (SafetensorsDType.Bool, "BOOL", 1),
        (SafetensorsDType.U8, "U8", 1),
        (SafetensorsDType.I8, "I8", 1),
        (SafetensorsDType.F8E5M2, "F8_E5M2", 1),
        (SafetensorsDType.F8E4M3, "F8_E4M3", 1),
        (SafetensorsDType.I16, "I16", 2),
        (SafetensorsDType.U16, "U16", 2),
        (SafetensorsDType.F16, "F16", 2),
        (SafetensorsDType.BF16, "BF16", 2),
        (SafetensorsDType.I32, "I32", 4),
        (SafetensorsDType.U32, "U32", 4),
        (SafetensorsDType.F32, "F32", 4),
        (SafetensorsDType.F64, "F64", 8),
        (SafetensorsDType.I64, "I64", 8),
        (SafetensorsDType.U64, "U64", 8),
    ];

    /// <summary>The dtype's name in a safetensors header, e.g. "BF16" or "F8_E4M3".</summary>
    public static string FormatName(this SafetensorsDType dtype) => Table[(int)dtype].Name;

    /// <summary>Bytes per element.</summary>
    public static int ElementSize(this SafetensorsDType dtype) => Table[(int)dtype].Size;

    /// <summary>Bytes of a tensor of <paramref name="shape"/> (non-negative dimensions), or null when that overflows 64 bits.</summary>
    internal static long? ByteCount(this SafetensorsDType dtype, long[] shape)
    {
        try
        {
            var count = 1L;
            foreach (var dim in shape)
                count = checked(count * dim);
            return checked(count * dtype.ElementSize());
        }
        catch (OverflowException)
        {
            return null;
        }
    }

    /// <summary>Parses a header dtype name (case-sensitive, as the reference library reads it).</summary>
    public static bool TryParse(string name, out SafetensorsDType dtype)
    {
        foreach (var entry in Table)
        {
            if (entry.Name == name)
            {
                dtype = entry.DType;
                return true;
            }
        }
        dtype = default;
        return false;
    }
}

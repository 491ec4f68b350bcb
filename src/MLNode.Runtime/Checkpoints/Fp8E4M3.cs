namespace MLNode.Runtime.Checkpoints;

/// <summary>
/// The OCP FP8 E4M3 format (PyTorch's float8_e4m3fn, safetensors F8_E4M3): 1 sign, 4 exponent bits with
/// bias 7, 3 mantissa bits; no infinities, S.1111.111 is NaN, so the largest finite value is 448.
/// This is the C# reference that native FP8 kernels are checked against.
/// </summary>
public static class Fp8E4M3
{
    private static readonly float[] Table = BuildTable();

    public static float ToFloat(byte bits) => Table[bits];

    private static float[] BuildTable()
    {
        var table = new float[256];
        for (var bits = 0; bits < table.Length; bits++)
            table[bits] = Decode((byte)bits);
        return table;
    }

    private static float Decode(byte bits)
    {
        var exponent = (bits >> 3) & 0xF;
        var mantissa = bits & 0x7;
        if (exponent == 0xF && mantissa == 0x7)
            return float.NaN;
        var magnitude = exponent == 0
            ? mantissa / 512f // subnormal: mantissa/8 × 2^(1-7)
            : BitConverter.Int32BitsToSingle(((exponent - 7 + 127) << 23) | (mantissa << 20));
        return (bits & 0x80) != 0 ? -magnitude : magnitude;
    }
}

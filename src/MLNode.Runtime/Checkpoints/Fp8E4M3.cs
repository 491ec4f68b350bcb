namespace MLNode.Runtime.Checkpoints;

/// <summary>
/// The OCP FP8 E4M3 format (PyTorch's float8_e4m3fn, safetensors F8_E4M3): 1 sign, 4 exponent bits with
/// bias 7, 3 mantissa bits; no infinities, S.1111.111 is NaN, so the largest finite value is 448.
/// This is the C# reference that native FP8 kernels are checked against.
/// </summary>
public static class Fp8E4M3
{
    private static readonly float[] Table = BuildTable();

    public const float MaxValue = 448f;

    public static float ToFloat(byte bits) => Table[bits];

    /// <summary>
    /// The E4M3 value nearest to <paramref name="value"/>, ties to even, saturating to ±448 (what PyTorch's and CUDA's
    /// "satfinite" conversions do); NaN becomes 0x7F. The steps are the native kernel's (kernels/fp8_block_gemm.cu)
    /// one for one, so the two agree bit for bit.
    /// </summary>
    public static byte FromFloat(float value)
    {
        if (float.IsNaN(value)) return 0x7F;
        var bits = BitConverter.SingleToUInt32Bits(value);
        var sign = (bits >> 24) & 0x80;
        var magnitude = MathF.Abs(value);
        if (magnitude >= MaxValue) return (byte)(sign | 0x7E);
        // Below 2⁻⁶ E4M3 is subnormal with a step of 2⁻⁹; its codes count those steps, and 8 steps is 0x08 = 2⁻⁶.
        if (magnitude < 1f / 64) return (byte)(sign | (uint)MathF.Round(magnitude * 512f, MidpointRounding.ToEven));
        // Round float32's 23 mantissa bits to E4M3's 3 (nearest, ties to even); a carry moves into the exponent.
        var rounded = (bits & 0x7FFFFFFF) + 0x7FFFF + ((bits >> 20) & 1);
        return (byte)(sign | (((rounded >> 23) - (127 - 7)) << 3) | ((rounded >> 20) & 7));
    }

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

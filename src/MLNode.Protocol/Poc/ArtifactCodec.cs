using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

namespace MLNode.Protocol.Poc;

/// <summary>
/// The wire form of an artifact (<c>vector_b64</c>): base64 of the vector as float16 little-endian
/// (k = 12 ⇒ 24 bytes ⇒ 32 characters).
/// </summary>
public static class ArtifactCodec
{
    private const int StackLimit = 1024;

    /// <summary>Rounds every value to float16 (nearest even, like numpy's <c>astype('&lt;f2')</c>) and encodes it.</summary>
    public static string Encode(ReadOnlySpan<float> vector)
    {
        var byteCount = vector.Length * sizeof(ushort);
        var bytes = byteCount <= StackLimit ? stackalloc byte[byteCount] : new byte[byteCount];
        for (var i = 0; i < vector.Length; i++)
            BinaryPrimitives.WriteHalfLittleEndian(bytes[(i * sizeof(ushort))..], (Half)vector[i]);
        return Convert.ToBase64String(bytes);
    }

    /// <summary>Decodes any number of float16 values; throws <see cref="FormatException"/> on bad base64 or an odd byte count.</summary>
    public static float[] Decode(string vectorB64)
    {
        ArgumentNullException.ThrowIfNull(vectorB64);
        var bytes = Convert.FromBase64String(vectorB64);
        if (bytes.Length % sizeof(ushort) != 0)
            throw new FormatException($"artifact holds {bytes.Length} bytes, not a whole number of float16 values");
        return ToFloats(bytes);
    }

    /// <summary>
    /// Decodes a received artifact as the validators accept it: valid base64 of exactly
    /// <paramref name="kDim"/> float16 values, none of them NaN or infinite (float16 exponent 31).
    /// </summary>
    public static bool TryDecode(string? vectorB64, int kDim, [NotNullWhen(true)] out float[]? vector)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kDim);
        vector = null;
        if (vectorB64 is null)
            return false;
        var byteCount = kDim * sizeof(ushort);
        // Too small for anything longer than k values, so a longer artifact fails to decode.
        var bytes = byteCount <= StackLimit ? stackalloc byte[byteCount] : new byte[byteCount];
        if (!Convert.TryFromBase64String(vectorB64, bytes, out var written) || written != byteCount)
            return false;
        var values = ToFloats(bytes);
        if (!ArtifactEncoder.IsFinite(values))
            return false;
        vector = values;
        return true;
    }

    private static float[] ToFloats(ReadOnlySpan<byte> bytes)
    {
        var values = new float[bytes.Length / sizeof(ushort)];
        for (var i = 0; i < values.Length; i++)
            values[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(bytes[(i * sizeof(ushort))..]);
        return values;
    }
}

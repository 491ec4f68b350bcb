namespace MLNode.Protocol.Poc;

/// <summary>
/// float32 <c>log</c> and <c>sin</c>/<c>cos</c> built only from correctly rounded IEEE-754 operations
/// (+, −, ×, ÷, fused multiply–add) and bit manipulation, so that every CPU and GPU that performs the same
/// operations in the same order gets the same bits. <c>kernels/poc_math.cuh</c> is this code for CUDA, each
/// operation written as an explicitly rounded intrinsic so the compiler can neither contract nor approximate.
/// </summary>
/// <remarks>
/// Library functions (glibc, .NET, CUDA's <c>logf</c>/<c>sincosf</c>) are accurate to an ulp or two but each
/// rounds its own way, while the PoC inputs must come out bit-identical from the C# reference and the GPU
/// kernel. Both are faithfully rounded on the domain the PoC uses. Measured against double precision on every
/// float of the domain: Log at most 0.664 ulp on [2^-32, 1] (all uniforms the Box–Muller step can take the log
/// of, and 1e-10f), Sin at most 0.840 ulp and Cos at most 0.793 ulp on [0, 6.2831855]; PortableMathTests
/// re-measures a sample that includes the worst cases.
/// </remarks>
public static class PortableMath
{
    private const float Sqrt2 = 1.41421354f;

    // ln 2 = Ln2Hi + Ln2Lo, Ln2Hi with 16 significant bits so that e·Ln2Hi is exact for every float exponent e.
    private const float Ln2Hi = 0.693145752f;
    private const float Ln2Lo = 1.42860677e-6f;

    // Taylor coefficients of R(z) = 2 (z/3 + z²/5 + z³/7 + z⁴/9), z = s², in log(1+f) = f − f²/2 + s (f²/2 + R).
    private const float R1 = 0.666666687f, R2 = 0.400000006f, R3 = 0.285714298f, R4 = 0.222222224f;

    // π/2 = PiOver2A + PiOver2B + PiOver2C to 72 bits (Cody–Waite), so the reduced angle keeps its relative
    // precision even for the float angles closest to a multiple of π/2.
    private const float TwoOverPi = 0.636619747f;
    private const float PiOver2A = 1.57079637f;
    private const float PiOver2B = -4.37113883e-8f;
    private const float PiOver2C = -1.71512451e-15f;

    // Taylor coefficients of sin r = r + r³ (S1 + r² (S2 + r² (S3 + r² S4))) and
    // cos r = 1 − r²/2 + r⁴ (C1 + r² (C2 + r² (C3 + r² C4))) for |r| ≤ π/4.
    private const float S1 = -0.166666672f, S2 = 8.33333377e-3f, S3 = -1.98412701e-4f, S4 = 2.75573188e-6f;
    private const float C1 = 4.16666679e-2f, C2 = -1.38888892e-3f, C3 = 2.48015876e-5f, C4 = -2.75573200e-7f;

    /// <summary>The natural logarithm of a positive normal float.</summary>
    public static float Log(float x)
    {
        // x = 2^e · m with m in [√½, √2], so f = m − 1 is exact and |f| ≤ 0.415.
        var bits = BitConverter.SingleToInt32Bits(x);
        var e = (bits >> 23) - 127;
        var m = BitConverter.Int32BitsToSingle((bits & 0x007FFFFF) | 0x3F800000);
        if (m > Sqrt2)
        {
            m *= 0.5f;
            e++;
        }
        var f = m - 1f;

        // log(1+f) = 2 atanh(s) with s = f/(2+f), which equals f − f²/2 + s (f²/2 + R). The leading f − f²/2
        // and e·ln 2 are carried as exact (value, error) pairs; the rounded terms only enter through
        // s (f²/2 + R) ≈ f³/6, so the final addition is the one rounding that matters.
        var s = f / (2f + f);
        var z = s * s;
        var r = z * Fma(z, Fma(z, Fma(z, R4, R3), R2), R1);
        var halfF = 0.5f * f;
        var halfSquare = halfF * f;
        var halfSquareError = Fma(halfF, f, -halfSquare);
        var lead = f - halfSquare;
        var leadError = (f - lead) - halfSquare;
        var (sum, sumError) = TwoSum(e * Ln2Hi, lead);
        var small = ((e * Ln2Lo + leadError) - halfSquareError) + s * (halfSquare + r);
        return sum + (sumError + small);
    }

    /// <summary>sin and cos of an angle in [0, 6.2831855] (2π rounded up to float32).</summary>
    public static (float Sin, float Cos) SinCos(float angle)
    {
        // angle = k·π/2 + (hi + lo), |hi| ≤ π/4. angle − k·PiOver2A is exact (both are multiples of 2^-24 and
        // the difference is below 1); the next term's rounding error is kept in lo.
        var k = MathF.Round(angle * TwoOverPi);
        var reduced = Fma(-k, PiOver2A, angle);
        var product = k * PiOver2B;
        var productError = Fma(k, PiOver2B, -product);
        var (hi, sumError) = TwoSum(reduced, -product);
        var lo = (sumError - productError) - k * PiOver2C;

        var z = hi * hi;
        var sin = hi + Fma(hi * z, Fma(z, Fma(z, Fma(z, S4, S3), S2), S1), lo);

        // cos = (1 − z/2) + tail: 1 − z/2 is split into a rounded part and its exact error, and the tail also
        // carries z's rounding error and lo's first-order term, so cos is rounded once at the end.
        var zError = Fma(hi, hi, -z);
        var halfZ = 0.5f * z;
        var w = 1f - halfZ;
        var wError = (1f - w) - halfZ;
        var tail = Fma(z * z, Fma(z, Fma(z, Fma(z, C4, C3), C2), C1), -Fma(hi, lo, 0.5f * zError));
        var cos = w + (wError + tail);

        return ((int)k & 3) switch
        {
            0 => (sin, cos),
            1 => (cos, -sin),
            2 => (-sin, -cos),
            _ => (-cos, sin),
        };
    }

    private static float Fma(float a, float b, float c) => MathF.FusedMultiplyAdd(a, b, c);

    /// <summary>Knuth's branch-free two-sum: a + b = sum + error exactly.</summary>
    private static (float Sum, float Error) TwoSum(float a, float b)
    {
        var sum = a + b;
        var bPart = sum - a;
        var aPart = sum - bPart;
        return (sum, (a - aPart) + (b - bPart));
    }
}

using MLNode.Protocol.Poc;
using Xunit;

namespace MLNode.Protocol.Tests.Poc;

/// <summary>
/// Accuracy of <see cref="PortableMath"/> against double precision (whose own error, ~1e-16 relative, is
/// invisible at float32's 6e-8). An exhaustive run over every float of the two domains found the maxima the
/// bounds below allow (Log 0.664 ulp, Sin 0.840, Cos 0.793); the tests re-measure a stride through each
/// domain (4 million inputs each) plus the neighbourhoods of those worst cases. Below 1 ulp means
/// faithfully rounded: the result is one of the two floats around the exact value.
/// </summary>
public class PortableMathTests
{
    // Floats swept on either side of each worst case.
    private const int Neighbourhood = 1 << 14;

    [Fact]
    public void Log_IsFaithfullyRoundedOnTheUniformsOfTheBoxMullerStep()
    {
        // The Box–Muller step takes the log of max(u, 1e-10f) for u a multiple of 2^-32 in [0, 1].
        var (error, at) = (0.0, 0f);
        foreach (var x in Inputs(MathF.Pow(2, -32), 1f, 64, 0.7065694f, 1e-10f))
            Track(UlpError(PortableMath.Log(x), Math.Log(x)), x, ref error, ref at);
        Assert.True(error <= 0.67, $"log({at:R}) is {error:F4} ulps off");
    }

    [Fact]
    public void SinCos_AreFaithfullyRoundedOnEveryBoxMullerAngle()
    {
        // Angles are fl(6.2831855f · u) for u in [0, 1]; the floats nearest the multiples of π/2 are where the
        // range reduction is hardest, so they are swept too.
        var (sinError, sinAt, cosError, cosAt) = (0.0, 0f, 0.0, 0f);
        foreach (var a in Inputs(0f, 6.2831855f, 256, 2.3753064f, 2.3347936f, MathF.PI / 2, MathF.PI, 3 * MathF.PI / 2, 6.2831855f))
        {
            var (sin, cos) = PortableMath.SinCos(a);
            Track(UlpError(sin, Math.Sin(a)), a, ref sinError, ref sinAt);
            Track(UlpError(cos, Math.Cos(a)), a, ref cosError, ref cosAt);
        }
        Assert.True(sinError <= 0.85, $"sin({sinAt:R}) is {sinError:F4} ulps off");
        Assert.True(cosError <= 0.80, $"cos({cosAt:R}) is {cosError:F4} ulps off");
    }

    [Fact]
    public void Exact_where_the_values_are()
    {
        Assert.Equal((0f, 1f), PortableMath.SinCos(0f));
        Assert.Equal(0f, PortableMath.Log(1f));
    }

    /// <summary>Every float in [first, last] whose bit pattern is a multiple of the stride, and the floats around the points.</summary>
    private static IEnumerable<float> Inputs(float first, float last, int stride, params float[] points)
    {
        var (from, to) = (BitConverter.SingleToInt32Bits(first), BitConverter.SingleToInt32Bits(last));
        for (long bits = from; bits <= to; bits += stride)
            yield return BitConverter.Int32BitsToSingle((int)bits);
        foreach (var point in points)
        {
            var center = BitConverter.SingleToInt32Bits(point);
            for (var bits = Math.Max(from, center - Neighbourhood); bits <= Math.Min(to, center + Neighbourhood); bits++)
                yield return BitConverter.Int32BitsToSingle(bits);
        }
    }

    // |value − exact| in float32 steps at the exact value's magnitude.
    private static double UlpError(float value, double exact) =>
        exact == 0 ? (value == 0 ? 0 : double.PositiveInfinity) : Math.Abs(value - exact) / Math.ScaleB(1.0, Math.ILogB(exact) - 23);

    private static void Track(double error, float x, ref double worst, ref float at)
    {
        if (error > worst) (worst, at) = (error, x);
    }
}

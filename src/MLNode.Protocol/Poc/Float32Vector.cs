namespace MLNode.Protocol.Poc;

/// <summary>The few float32 vector operations the PoC needs, rounded as PyTorch rounds them.</summary>
/// <remarks>
/// Reductions accumulate in double and round once: PyTorch's GPU tree reductions are far closer to the exact
/// sum than a sequential float32 loop would be, and the elementwise steps stay float32 like the reference.
/// </remarks>
internal static class Float32Vector
{
    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var sum = 0.0;
        for (var i = 0; i < a.Length; i++)
            sum += (double)a[i] * b[i];
        return (float)sum;
    }

    public static float Norm(ReadOnlySpan<float> x) => (float)Math.Sqrt(Dot(x, x));

    /// <summary><c>x / divisor</c> elementwise (a true division, as the reference does, not a reciprocal product).</summary>
    public static void Divide(Span<float> x, float divisor)
    {
        for (var i = 0; i < x.Length; i++)
            x[i] /= divisor;
    }
}

namespace MLNode.Protocol.Poc;

/// <summary>
/// The counter-based generator of the PoC: value i of a stream is a function of (seed, i) only, so any
/// slice of a stream can be computed on its own (and in parallel) with the same bits.
/// </summary>
/// <remarks>
/// All arithmetic is float32, as the reference does it on the GPU, with the reference's operations in its order.
/// Its log, sin and cos come from libm or CUDA, which differ from each other in the last ulp or two; here they
/// are <see cref="PortableMath"/>'s, so the native kernel (kernels/poc_math.cuh) reproduces these values bit for
/// bit on any GPU. They are within 2 ulps of the reference's CPU and CUDA values, as those are of each other
/// (PocRandomTests), far inside what the bf16 inputs and the artifact tolerance can see.
/// </remarks>
public static class PocRandom
{
    // The reference multiplies by the Python double 2π, which PyTorch rounds to float32 for a float32 tensor.
    private const float TwoPi = 6.2831855f;

    // torch.clamp(u, min=1e-10) keeps log finite when the hash is 0.
    private const float MinU1 = 1e-10f;

    /// <summary>
    /// <c>float32(mix(i, seed)) / 2^32</c>. The hash is rounded to float32 before the division, so hashes
    /// ≥ 2^32−128 give exactly 1.0f.
    /// </summary>
    public static float Uniform(uint seed, uint index) => (float)Murmur3.Mix(index, seed) / 4294967296f;

    /// <summary>Box–Muller normals <c>normal(seed, N)</c> with N = <paramref name="destination"/>.Length.</summary>
    public static void FillNormal(uint seed, Span<float> destination) =>
        FillNormalPairs(seed, destination, 0, PairCount(destination.Length));

    public static float[] Normal(uint seed, int count)
    {
        var values = new float[count];
        FillNormal(seed, values);
        return values;
    }

    /// <summary>P = ceil(N/2): pair j uses uniforms j and P+j and writes elements j and P+j.</summary>
    internal static int PairCount(int count) => (int)(((long)count + 1) / 2);

    /// <summary>
    /// Pairs [<paramref name="firstPair"/>, <paramref name="endPair"/>) of <c>normal(seed, N)</c>, N =
    /// <paramref name="stream"/>.Length: the reference concatenates the cosine half and the sine half (it does
    /// not interleave them) and drops the last sine when N is odd.
    /// </summary>
    internal static void FillNormalPairs(uint seed, Span<float> stream, int firstPair, int endPair)
    {
        var count = stream.Length;
        var pairs = PairCount(count);
        for (var j = firstPair; j < endPair; j++)
        {
            var u1 = MathF.Max(Uniform(seed, (uint)j), MinU1);
            var u2 = Uniform(seed, (uint)(pairs + j));
            var radius = MathF.Sqrt(-2f * PortableMath.Log(u1));
            var (sin, cos) = PortableMath.SinCos(TwoPi * u2);
            stream[j] = radius * cos;
            if (pairs + j < count)
                stream[pairs + j] = radius * sin;
        }
    }
}

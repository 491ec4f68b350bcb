namespace MLNode.Protocol.Poc;

/// <summary>
/// Turns a nonce's final hidden state into its artifact: normalise, pick k dimensions, rotate, normalise,
/// encode as float16 (see <see cref="ArtifactCodec"/>).
/// </summary>
public static class ArtifactEncoder
{
    // Added to both norms by the reference so that a zero vector stays zero instead of becoming NaN.
    private const float NormEpsilon = 1e-8f;

    /// <summary>
    /// False when a hidden state holds NaN or ±∞: such a row (a GPU fault) must not become an artifact; the
    /// reference drops it, or rejects the whole batch.
    /// </summary>
    public static bool IsFinite(ReadOnlySpan<float> values)
    {
        foreach (var value in values)
        {
            if (!float.IsFinite(value))
                return false;
        }
        return true;
    }

    /// <summary>The artifact (<c>vector_b64</c>) of nonce <paramref name="nonce"/> from its final hidden state (float32, length d).</summary>
    public static string Encode(PocRound round, long nonce, ReadOnlySpan<float> lastHidden) =>
        ArtifactCodec.Encode(Vector(round, nonce, lastHidden));

    /// <summary>The artifact vector before float16 rounding (float32, length k, unit norm).</summary>
    public static float[] Vector(PocRound round, long nonce, ReadOnlySpan<float> lastHidden)
    {
        ArgumentNullException.ThrowIfNull(round);
        if (lastHidden.Length != round.HiddenSize)
            throw new ArgumentException($"hidden state has {lastHidden.Length} values, the round's hidden size is {round.HiddenSize}", nameof(lastHidden));
        if (!IsFinite(lastHidden))
            throw new ArgumentException($"hidden state of nonce {nonce} is not finite", nameof(lastHidden));

        // Normalising only the picked values gives the same float32 results as normalising all d of them.
        var norm = Float32Vector.Norm(lastHidden) + NormEpsilon;
        var indices = DimensionPick.Indices(round, nonce);
        var x = new float[indices.Length];
        for (var i = 0; i < x.Length; i++)
            x[i] = lastHidden[indices[i]] / norm;

        HaarRotation.Apply(round, nonce, x);
        Float32Vector.Divide(x, Float32Vector.Norm(x) + NormEpsilon);
        return x;
    }
}

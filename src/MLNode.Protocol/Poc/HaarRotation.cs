namespace MLNode.Protocol.Poc;

/// <summary>
/// The seeded rotation of the k picked values: k−1 Householder reflections whose vectors come from
/// <c>seed32("{BH}_{PK}_nonce_{n}_haar_hh_{k}_{j}")</c>, j = 0..k−2 (the reference avoids a QR decomposition).
/// </summary>
public static class HaarRotation
{
    // The reference's guard against a zero vector; a sum of k squared normals never comes near it.
    private const float NormEpsilon = 1e-30f;

    private const int StackLimit = 1024;

    /// <summary>Rotates <paramref name="x"/> (length k = <see cref="PocRound.KDim"/>) in place.</summary>
    public static void Apply(PocRound round, long nonce, Span<float> x)
    {
        ArgumentNullException.ThrowIfNull(round);
        var k = round.KDim;
        if (x.Length != k)
            throw new ArgumentException($"expected {k} values, got {x.Length}", nameof(x));

        var w = k <= StackLimit ? stackalloc float[k] : new float[k];
        for (var step = 0; step < k - 1; step++)
        {
            PocRandom.FillNormal(PocSeeds.HaarStep(round.BlockHash, round.PublicKey, nonce, k, step), w);
            Float32Vector.Divide(w, Float32Vector.Norm(w) + NormEpsilon);
            Householder.Reflect(x, w);
        }
    }
}

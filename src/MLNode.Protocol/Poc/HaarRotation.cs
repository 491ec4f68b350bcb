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

    /// <summary>Values in the unit vectors of one nonce's rotation: k−1 vectors of length k.</summary>
    public static int UnitVectorsLength(int k) => checked((k - 1) * k);

    /// <summary>
    /// Writes the unit vectors w_0..w_{k−2} of nonce <paramref name="nonce"/>'s rotation one after the other
    /// into <paramref name="destination"/> (<see cref="UnitVectorsLength"/> values): <see cref="Apply"/> and
    /// the batched GPU encoder both reflect by these.
    /// </summary>
    public static void UnitVectors(PocRound round, long nonce, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(round);
        var k = round.KDim;
        if (destination.Length != UnitVectorsLength(k))
            throw new ArgumentException($"expected {UnitVectorsLength(k)} values (k−1 vectors of {k}), got {destination.Length}", nameof(destination));

        for (var step = 0; step < k - 1; step++)
        {
            var w = destination.Slice(step * k, k);
            PocRandom.FillNormal(PocSeeds.HaarStep(round.BlockHash, round.PublicKey, nonce, k, step), w);
            Float32Vector.Divide(w, Float32Vector.Norm(w) + NormEpsilon);
        }
    }

    /// <summary>Rotates <paramref name="x"/> (length k = <see cref="PocRound.KDim"/>) in place.</summary>
    public static void Apply(PocRound round, long nonce, Span<float> x)
    {
        ArgumentNullException.ThrowIfNull(round);
        var k = round.KDim;
        if (x.Length != k)
            throw new ArgumentException($"expected {k} values, got {x.Length}", nameof(x));

        var length = UnitVectorsLength(k);
        var vectors = length <= StackLimit ? stackalloc float[length] : new float[length];
        UnitVectors(round, nonce, vectors);
        for (var step = 0; step < k - 1; step++)
            Householder.Reflect(x, vectors.Slice(step * k, k));
    }
}

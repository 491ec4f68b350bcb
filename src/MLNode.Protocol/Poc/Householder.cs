namespace MLNode.Protocol.Poc;

/// <summary>
/// Householder reflections <c>H x = x − 2(x·v)v</c> (v a unit vector) and the per-layer vectors with which the
/// PoC forward reflects every decoder layer's output.
/// </summary>
public static class Householder
{
    /// <summary>
    /// <c>v_i = normal(seed32("{BH}_layer_{i}_householder"), d) / ||·||</c> (float32). It depends only on the
    /// block hash, so every participant of a round uses the same vectors.
    /// </summary>
    public static float[] LayerVector(string blockHash, int layer, int hiddenSize)
    {
        var v = PocRandom.Normal(PocSeeds.Layer(blockHash, layer), hiddenSize);
        Float32Vector.Divide(v, Float32Vector.Norm(v));
        return v;
    }

    /// <summary>Replaces <paramref name="x"/> by <c>x − 2(x·v)v</c>, in float32.</summary>
    public static void Reflect(Span<float> x, ReadOnlySpan<float> unitVector)
    {
        if (x.Length != unitVector.Length)
            throw new ArgumentException($"vector of length {x.Length} cannot be reflected by one of length {unitVector.Length}", nameof(unitVector));
        var twiceDot = 2f * Float32Vector.Dot(x, unitVector);
        for (var i = 0; i < x.Length; i++)
            x[i] -= twiceDot * unitVector[i];
    }
}

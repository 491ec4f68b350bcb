namespace MLNode.Protocol.Poc;

/// <summary>One nonce's artifact as it travels (<c>{"nonce": n, "vector_b64": "…"}</c>).</summary>
public sealed record PocArtifact(long Nonce, string VectorB64);

/// <summary>
/// Parameters of the fraud test (<c>stat_test</c>); the defaults are the reference node's, the chain sends its own
/// per model. The chain's <c>p_value_threshold</c> is the <see cref="FraudThreshold"/>.
/// </summary>
public sealed record PocStatTest(
    double DistThreshold = PocStatTest.DefaultDistThreshold,
    double PMismatch = PocStatTest.DefaultPMismatch,
    double FraudThreshold = PocStatTest.DefaultFraudThreshold)
{
    public const double DefaultDistThreshold = 0.02;
    public const double DefaultPMismatch = 0.001;
    public const double DefaultFraudThreshold = 0.01;
}

/// <summary>Outcome of validating one participant's artifacts.</summary>
public sealed record PocValidationResult(
    int NTotal,
    int NMismatch,
    IReadOnlyList<long> MismatchNonces,
    double PValue,
    bool FraudDetected);

/// <summary>
/// Compares the artifacts this node recomputed with the ones a participant reported, then runs the
/// one-sided binomial test: fraud when P[X ≥ mismatches] &lt; fraud threshold for X ~ Binomial(n, p_mismatch).
/// </summary>
public static class ArtifactValidator
{
    /// <param name="nonces">The nonces under validation; their count is n of the test.</param>
    /// <param name="computed">Artifacts recomputed here, each for a nonce of <paramref name="nonces"/>.</param>
    /// <param name="received">The participant's artifacts by nonce.</param>
    /// <param name="statTest">Distance threshold and test parameters.</param>
    /// <param name="kDim">Artifact length every received vector must have.</param>
    /// <remarks>
    /// As in the reference, a nonce counts towards n even when no artifact was computed for it (e.g. its hidden
    /// state was NaN) or the participant sent none, but only computed nonces with a non-empty received artifact
    /// can be mismatches. A received artifact is a mismatch when it does not decode to k finite values (the
    /// reference would fail the whole request on bad base64) or lies farther than the threshold in L2.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException">More mismatches than nonces (computed artifacts for nonces
    /// outside <paramref name="nonces"/>).</exception>
    public static PocValidationResult Validate(
        IReadOnlyCollection<long> nonces,
        IEnumerable<PocArtifact> computed,
        IReadOnlyDictionary<long, string> received,
        PocStatTest statTest,
        int kDim = PocRound.DefaultKDim)
    {
        ArgumentNullException.ThrowIfNull(nonces);
        ArgumentNullException.ThrowIfNull(computed);
        ArgumentNullException.ThrowIfNull(received);
        ArgumentNullException.ThrowIfNull(statTest);

        var mismatches = new List<long>();
        foreach (var artifact in computed)
        {
            if (!received.TryGetValue(artifact.Nonce, out var reported) || string.IsNullOrEmpty(reported))
                continue;
            if (!ArtifactCodec.TryDecode(reported, kDim, out var theirs)
                || Distance(ArtifactCodec.Decode(artifact.VectorB64), theirs) > statTest.DistThreshold)
            {
                mismatches.Add(artifact.Nonce);
            }
        }

        var total = nonces.Count;
        var pValue = total == 0 ? 1.0 : BinomialTest.UpperTail(mismatches.Count, total, statTest.PMismatch);
        return new PocValidationResult(total, mismatches.Count, mismatches, pValue, pValue < statTest.FraudThreshold);
    }

    /// <summary>L2 distance rounded to float32, as numpy computes it for the float32 vectors.</summary>
    private static float Distance(float[] ours, float[] theirs)
    {
        if (ours.Length != theirs.Length)
            throw new ArgumentException($"computed artifact has {ours.Length} values, expected {theirs.Length}", nameof(ours));
        var difference = new float[ours.Length];
        for (var i = 0; i < ours.Length; i++)
            difference[i] = ours[i] - theirs[i];
        return Float32Vector.Norm(difference);
    }
}

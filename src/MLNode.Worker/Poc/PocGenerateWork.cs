using MLNode.Engines.Hosting;
using MLNode.Protocol.Management;
using MLNode.Protocol.Poc;

namespace MLNode.Worker.Poc;

/// <summary>
/// A checked /generate request ready to run: the artifacts of <c>nonces</c>, or — when the participant's
/// artifacts are given — their validation.
/// </summary>
/// <param name="Received">The participant's artifacts by nonce; null for plain generation.</param>
public sealed record PocGenerateWork(
    PocGenerateRequest Request,
    IPocProver Prover,
    PocRound Round,
    int BatchSize,
    IReadOnlyDictionary<long, string>? Received,
    PocStatTest StatTest)
{
    public bool IsValidation => Received is not null;

    /// <summary>The work of <paramref name="request"/> (received artifacts by nonce, the last one of a repeated nonce wins).</summary>
    public static PocGenerateWork For(PocGenerateRequest request, IPocProver prover, PocRound round, int defaultBatchSize) =>
        new(request, prover, round, request.BatchSize ?? defaultBatchSize,
            request.Validation?.Artifacts.GroupBy(a => a.Nonce).ToDictionary(g => g.Key, g => g.Last().VectorB64),
            (request.StatTest ?? new PocStatTestRequest()).ToStatTest());

    /// <summary>
    /// Computes the nonces in chunks of <see cref="BatchSize"/>, each after continuous generation (which has
    /// priority) is idle, and returns the completed result the routes and callbacks report.
    /// </summary>
    public async Task<object> RunAsync(string requestId, PocGate gate, PocCompute compute, TimeSpan chunkTimeout, CancellationToken ct)
    {
        await gate.WaitForGenerationIdleAsync(ct);
        using var lease = gate.EnterJob();
        var artifacts = new List<PocArtifact>(Request.Nonces.Count);
        foreach (var chunk in Request.Nonces.Chunk(BatchSize))
        {
            await gate.WaitForGenerationIdleAsync(ct);
            artifacts.AddRange(await compute.ComputeAsync(Prover, Round, chunk, chunkTimeout, ct));
        }
        if (Received is null)
            return new PocArtifactsResult(PocJob.Completed, requestId, artifacts, PocEncoding.Float16(Round.KDim));

        var outcome = ArtifactValidator.Validate(Request.Nonces, artifacts, Received, StatTest, Round.KDim);
        return new PocValidationOutcome(PocJob.Completed, requestId, outcome.NTotal, outcome.NMismatch, outcome.MismatchNonces,
            outcome.PValue, outcome.FraudDetected);
    }

    /// <summary>The callback a queued job's result is posted as: its path and payload.</summary>
    public (string Path, object Payload) Callback(object result) => result switch
    {
        PocArtifactsResult a => ("generated", new PocGeneratedCallback(
            Request.PublicKey, Request.BlockHash, Request.BlockHeight, Request.NodeId, a.Artifacts, a.Encoding, a.RequestId)),
        PocValidationOutcome v => ("validated", new PocValidatedCallback(
            v.RequestId, Request.BlockHash, Request.BlockHeight, Request.PublicKey, Request.NodeId,
            v.NTotal, v.NMismatch, v.MismatchNonces, v.PValue, v.FraudDetected)),
        _ => throw new ArgumentException($"not a /generate result: {result.GetType().Name}", nameof(result)),
    };
}

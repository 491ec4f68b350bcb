using System.Text.Json.Serialization;
using MLNode.Protocol.Poc;

namespace MLNode.Protocol.Management;

/// <summary>
/// <c>params</c> of the PoC v2 requests. The reference declares it <c>extra="forbid"</c>, so an unknown field
/// here is a 422, while unknown fields elsewhere in the body are ignored as pydantic does.
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record PocRequestParams(string Model, int SeqLen, int KDim = PocRound.DefaultKDim);

/// <summary>POST /api/v1/inference/pow/init/generate: start continuous generation for this node's nonces.</summary>
public sealed record PocInitGenerateRequest(
    string BlockHash,
    long BlockHeight,
    string PublicKey,
    long NodeId,
    long NodeCount,
    PocRequestParams Params,
    int? BatchSize = null,
    string? Url = null,
    bool PocStrongerRng = false) : IValidatedRequest
{
    public IEnumerable<FieldError> Validate() =>
        PocRequestChecks.Common(NodeId, NodeCount, Params, BatchSize, Url);
}

/// <summary>POST /api/v1/inference/pow/generate: artifacts for given nonces, or their validation.</summary>
public sealed record PocGenerateRequest(
    string BlockHash,
    long BlockHeight,
    string PublicKey,
    long NodeId,
    long NodeCount,
    IReadOnlyList<long> Nonces,
    PocRequestParams Params,
    int? BatchSize = null,
    bool Wait = false,
    string? Url = null,
    PocValidationRequest? Validation = null,
    PocStatTestRequest? StatTest = null,
    bool PocStrongerRng = false) : IValidatedRequest
{
    public IEnumerable<FieldError> Validate() =>
        PocRequestChecks.Common(NodeId, NodeCount, Params, BatchSize, Url).Concat(StatTest?.Validate() ?? []);

    /// <summary>The reference's rule for validation requests: the artifacts' nonce set equals the nonce set (else 400).</summary>
    public bool ValidationMatchesNonces =>
        Validation is null || Validation.Artifacts.Select(a => a.Nonce).ToHashSet().SetEquals(Nonces);
}

/// <summary>The participant's artifacts to check; their nonce set must equal <c>nonces</c>.</summary>
public sealed record PocValidationRequest(IReadOnlyList<PocArtifact> Artifacts);

/// <summary>
/// <c>stat_test</c>. dapi sends the chain's <c>p_value_threshold</c>, the reference knows only
/// <c>fraud_threshold</c>; both mean the same and <c>p_value_threshold</c> wins when both are given.
/// </summary>
public sealed record PocStatTestRequest(
    double DistThreshold = PocStatTest.DefaultDistThreshold,
    double PMismatch = PocStatTest.DefaultPMismatch,
    double? FraudThreshold = null,
    double? PValueThreshold = null)
{
    public PocStatTest ToStatTest() =>
        new(DistThreshold, PMismatch, PValueThreshold ?? FraudThreshold ?? PocStatTest.DefaultFraudThreshold);

    public IEnumerable<FieldError> Validate()
    {
        if (!(DistThreshold >= 0))
            yield return new FieldError("body.stat_test.dist_threshold", "must be a distance ≥ 0");
        if (!(PMismatch is >= 0 and <= 1))
            yield return new FieldError("body.stat_test.p_mismatch", "must be a probability in [0, 1]");
        if (FraudThreshold is { } fraud && !(fraud is >= 0 and <= 1))
            yield return new FieldError("body.stat_test.fraud_threshold", "must be a probability in [0, 1]");
        if (PValueThreshold is { } pValue && !(pValue is >= 0 and <= 1))
            yield return new FieldError("body.stat_test.p_value_threshold", "must be a probability in [0, 1]");
    }
}

/// <summary>Range checks both PoC requests share.</summary>
internal static class PocRequestChecks
{
    public static IEnumerable<FieldError> Common(long nodeId, long nodeCount, PocRequestParams p, int? batchSize, string? url)
    {
        if (nodeId < 0)
            yield return new FieldError("body.node_id", "must be ≥ 0");
        if (nodeCount < 1)
            yield return new FieldError("body.node_count", "must be ≥ 1");
        if (p.SeqLen < 1)
            yield return new FieldError("body.params.seq_len", "must be ≥ 1");
        if (p.KDim < 1)
            yield return new FieldError("body.params.k_dim", "must be ≥ 1");
        if (batchSize < 1)
            yield return new FieldError("body.batch_size", "must be ≥ 1");
        if (url is not null && !(Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"))
            yield return new FieldError("body.url", $"'{url}' is not an absolute http(s) URL");
    }
}

/// <summary>How artifacts are encoded: <c>{"dtype":"f16","k_dim":12,"endian":"le"}</c>.</summary>
public sealed record PocEncoding(string Dtype, int KDim, string Endian)
{
    public static PocEncoding Float16(int kDim) => new("f16", kDim, "le");
}

/// <summary>One backend's answer in the fan-out responses; this worker is its own single backend.</summary>
public sealed record PocBackendResult(int Port, string Status);

public sealed record PocInitGenerateResponse(string Status, int Backends, int NGroups, IReadOnlyList<PocBackendResult> Results, object? Errors = null);

public sealed record PocStopResponse(string Status, IReadOnlyList<PocBackendResult> Results, object? Errors = null);

public sealed record StatusMessage(string Status, string Message);

/// <summary>The round a backend generates for, as its /status reports it.</summary>
public sealed record PocGenerationConfig(
    string BlockHash, long BlockHeight, string PublicKey, long NodeId, long NodeCount, int GroupId, int NGroups, int SeqLen, int KDim);

public sealed record PocGenerationStats(long TotalProcessed, double NoncesPerSecond);

public sealed record PocBackendStatus(int Port, PocStatus Status, PocGenerationConfig? Config, PocGenerationStats? Stats);

/// <summary>GET /api/v1/inference/pow/status.</summary>
public sealed record PocStatusResponse(PocStatus Status, IReadOnlyList<PocBackendStatus> Backends);

/// <summary>POST /generate with <c>wait=false</c>.</summary>
public sealed record PocQueuedResponse(string Status, string RequestId, int QueuedCount);

/// <summary>A finished /generate without validation (response and result of GET /generate/{id}).</summary>
public sealed record PocArtifactsResult(string Status, string RequestId, IReadOnlyList<PocArtifact> Artifacts, PocEncoding Encoding);

/// <summary>A finished /generate with validation.</summary>
public sealed record PocValidationOutcome(
    string Status, string RequestId, int NTotal, int NMismatch, IReadOnlyList<long> MismatchNonces, double PValue, bool FraudDetected);

/// <summary>
/// POST {url}/generated. The continuous stream leaves out <c>request_id</c>; a queued /generate job's result carries it.
/// </summary>
public sealed record PocGeneratedCallback(
    string PublicKey,
    string BlockHash,
    long BlockHeight,
    long NodeId,
    IReadOnlyList<PocArtifact> Artifacts,
    PocEncoding Encoding,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? RequestId = null);

/// <summary>POST {url}/validated.</summary>
public sealed record PocValidatedCallback(
    string RequestId,
    string BlockHash,
    long BlockHeight,
    string PublicKey,
    long NodeId,
    int NTotal,
    int NMismatch,
    IReadOnlyList<long> MismatchNonces,
    double PValue,
    bool FraudDetected);

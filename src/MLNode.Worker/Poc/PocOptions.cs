namespace MLNode.Worker.Poc;

/// <summary>
/// PoC v2 settings (section "Poc"). Where the reference node has an environment variable for a setting, that
/// variable is read as a fallback under its reference name (<c>POC_CALLBACK_INTERVAL_SEC</c>, …); any other
/// configuration source wins over it.
/// </summary>
public sealed class PocOptions
{
    public const string Section = "Poc";

    /// <summary>Nonces per forward when the request names no batch_size (POC_BATCH_SIZE_DEFAULT).</summary>
    public int BatchSizeDefault { get; set; } = 32;

    /// <summary>Seconds between two /generated posts of the continuous stream (POC_CALLBACK_INTERVAL_SEC).</summary>
    public double CallbackIntervalSec { get; set; } = 5;

    /// <summary>Artifacts the stream buffers while the receiver is down; the oldest go first (POC_CALLBACK_MAX_ARTIFACTS).</summary>
    public int CallbackMaxArtifacts { get; set; } = 1_000_000;

    /// <summary>Retries of one callback after its first attempt before it is given up (POC_CALLBACK_MAX_RETRIES).</summary>
    public int CallbackMaxRetries { get; set; } = 10;

    /// <summary>Timeout of one callback attempt.</summary>
    public double CallbackTimeoutSec { get; set; } = 10;

    /// <summary>Wait before the first retry; it doubles up to <see cref="CallbackRetryMaxBackoffSec"/>.</summary>
    public double CallbackRetryBackoffSec { get; set; } = 1;

    public double CallbackRetryMaxBackoffSec { get; set; } = 30;

    /// <summary>Callbacks of finished /generate jobs waiting to be delivered; the oldest go first when full.</summary>
    public int CallbackQueueCapacity { get; set; } = 10_000;

    /// <summary>Job callbacks delivered at the same time.</summary>
    public int CallbackConcurrency { get; set; } = 10;

    /// <summary>Nonces of queued /generate jobs beyond which a new job is refused with 429 (POC_MAX_QUEUED_NONCES).</summary>
    public int MaxQueuedNonces { get; set; } = 100_000;

    /// <summary>How long a finished job's result stays readable at GET /generate/{id} (POC_GENERATE_RESULT_TTL_SEC).</summary>
    public double GenerateResultTtlSec { get; set; } = 300;

    /// <summary>How long a /generate chunk may keep failing before its job fails (POC_GENERATE_CHUNK_TIMEOUT_SEC).</summary>
    public double GenerateChunkTimeoutSec { get; set; } = 60;

    /// <summary>Wait before computing a failed batch again; it doubles up to one second.</summary>
    public double ComputeRetryBackoffSec { get; set; } = 0.05;

    /// <summary>Seconds between two progress lines of the generation loop.</summary>
    public double ProgressLogIntervalSec { get; set; } = 5;

    /// <summary>Largest /generate body (validation requests carry one artifact per nonce).</summary>
    public long MaxGenerateRequestBytes { get; set; } = 32L << 20;

    public TimeSpan CallbackInterval => TimeSpan.FromSeconds(CallbackIntervalSec);
    public TimeSpan CallbackTimeout => TimeSpan.FromSeconds(CallbackTimeoutSec);
    public TimeSpan CallbackRetryBackoff => TimeSpan.FromSeconds(CallbackRetryBackoffSec);
    public TimeSpan CallbackRetryMaxBackoff => TimeSpan.FromSeconds(CallbackRetryMaxBackoffSec);
    public TimeSpan GenerateResultTtl => TimeSpan.FromSeconds(GenerateResultTtlSec);
    public TimeSpan GenerateChunkTimeout => TimeSpan.FromSeconds(GenerateChunkTimeoutSec);
    public TimeSpan ComputeRetryBackoff => TimeSpan.FromSeconds(ComputeRetryBackoffSec);
    public TimeSpan ProgressLogInterval => TimeSpan.FromSeconds(ProgressLogIntervalSec);

    public bool IsValid() =>
        BatchSizeDefault > 0 && CallbackIntervalSec > 0 && CallbackMaxArtifacts > 0 && CallbackMaxRetries >= 0
        && CallbackTimeoutSec > 0 && CallbackRetryBackoffSec > 0 && CallbackRetryMaxBackoffSec >= CallbackRetryBackoffSec
        && CallbackQueueCapacity > 0 && CallbackConcurrency > 0 && MaxQueuedNonces > 0 && GenerateResultTtlSec > 0
        && GenerateChunkTimeoutSec > 0 && ComputeRetryBackoffSec > 0 && ProgressLogIntervalSec > 0 && MaxGenerateRequestBytes > 0;

    private static readonly Dictionary<string, string> ReferenceVariables = new()
    {
        ["POC_BATCH_SIZE_DEFAULT"] = nameof(BatchSizeDefault),
        ["POC_CALLBACK_INTERVAL_SEC"] = nameof(CallbackIntervalSec),
        ["POC_CALLBACK_MAX_ARTIFACTS"] = nameof(CallbackMaxArtifacts),
        ["POC_CALLBACK_MAX_RETRIES"] = nameof(CallbackMaxRetries),
        ["POC_MAX_QUEUED_NONCES"] = nameof(MaxQueuedNonces),
        ["POC_GENERATE_RESULT_TTL_SEC"] = nameof(GenerateResultTtlSec),
        ["POC_GENERATE_CHUNK_TIMEOUT_SEC"] = nameof(GenerateChunkTimeoutSec),
    };

    /// <summary>The reference node's environment variables that are set, as "Poc:*" configuration keys.</summary>
    public static IEnumerable<KeyValuePair<string, string?>> FromReferenceEnvironment() =>
        from variable in ReferenceVariables
        let value = Environment.GetEnvironmentVariable(variable.Key)
        where !string.IsNullOrEmpty(value)
        select KeyValuePair.Create($"{Section}:{variable.Value}", (string?)value);
}

using System.Globalization;

namespace MLNode.Runtime.Hub;

/// <summary>
/// Where the Hugging Face cache lives, which hub it is filled from, and the download policy of the
/// reference node (3 concurrent downloads, 3 retries with 2^n s backoff, stall timeout 600 s checked every 60 s).
/// </summary>
public sealed class HubOptions
{
    public string HfHome { get; set; } = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "huggingface");

    /// <summary>Base address of an HF-compatible hub (a mirror works); no trailing slash.</summary>
    public string Endpoint { get; set; } = "https://huggingface.co";

    /// <summary>Sent as <c>Authorization: Bearer</c> for gated and private repositories.</summary>
    public string? Token { get; set; }

    /// <summary>Downloads are acknowledged with IGNORED and nothing is fetched (HF_HUB_OFFLINE).</summary>
    public bool Offline { get; set; }

    /// <summary>An attempt that receives no byte for this long is cancelled and retried.</summary>
    public TimeSpan StallTimeout { get; set; } = TimeSpan.FromSeconds(600);

    public TimeSpan StallCheckInterval { get; set; } = TimeSpan.FromSeconds(60);

    public TimeSpan ProgressLogInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Retry n (1-based) waits <c>RetryBackoffBase × 2^n</c>: 2, 4, 8 s by default.</summary>
    public TimeSpan RetryBackoffBase { get; set; } = TimeSpan.FromSeconds(1);

    public int MaxConcurrentDownloads { get; set; } = 3;

    public int MaxRetries { get; set; } = 3;

    /// <summary>Files of one snapshot fetched at once; one connection rarely fills a host's link.</summary>
    public int MaxParallelFiles { get; set; } = 8;

    /// <summary>The hub cache itself, <c>$HF_HOME/hub</c>, as huggingface_hub lays it out.</summary>
    public string HubCachePath => Path.Combine(HfHome, "hub");

    /// <summary>
    /// Applies HF_HOME, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE and MODEL_DOWNLOAD_STALL_TIMEOUT where set.
    /// Without HF_TOKEN the token saved by <c>huggingface-cli login</c> in <c>$HF_HOME/token</c> is used,
    /// as huggingface_hub does, so a host migrating from the Python node keeps access to gated models.
    /// </summary>
    public void ApplyEnvironment(Func<string, string?> variable)
    {
        if (Value(variable, "HF_HOME") is { } home) HfHome = home;
        if (Value(variable, "HF_ENDPOINT") is { } endpoint) Endpoint = endpoint.TrimEnd('/');
        if (Value(variable, "HF_HUB_OFFLINE") is { } offline)
            Offline = offline.Trim().ToLowerInvariant() is "1" or "true" or "yes";
        if (Value(variable, "MODEL_DOWNLOAD_STALL_TIMEOUT") is { } stall)
        {
            if (!double.TryParse(stall, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || !(seconds > 0))
                throw new FormatException($"MODEL_DOWNLOAD_STALL_TIMEOUT='{stall}' is not a positive number of seconds");
            StallTimeout = TimeSpan.FromSeconds(seconds);
        }
        Token = Value(variable, "HF_TOKEN") ?? Token ?? SavedToken();
    }

    private string? SavedToken()
    {
        var file = Path.Combine(HfHome, "token");
        return File.Exists(file) && File.ReadAllText(file).Trim() is { Length: > 0 } token ? token : null;
    }

    private static string? Value(Func<string, string?> variable, string name) =>
        variable(name) is { Length: > 0 } value ? value : null;
}

using MLNode.Protocol.Management;

namespace MLNode.Runtime.Hub;

/// <summary>What <c>POST /api/v1/models/download</c> answers; each case names its HTTP status.</summary>
public abstract record DownloadStartResult
{
    private DownloadStartResult() { }

    /// <summary>202 with the body: DOWNLOADING (started), DOWNLOADED (already complete) or IGNORED (HF_HUB_OFFLINE).</summary>
    public sealed record Accepted(DownloadResponse Response) : DownloadStartResult;

    /// <summary>409 <c>{"detail": Detail}</c>: a download with the same task id is running.</summary>
    public sealed record AlreadyDownloading(string Detail) : DownloadStartResult;

    /// <summary>429 <c>{"detail": Detail}</c>: <see cref="HubOptions.MaxConcurrentDownloads"/> are running.</summary>
    public sealed record TooManyDownloads(string Detail) : DownloadStartResult;
}

/// <summary>What <c>DELETE /api/v1/models</c> answers; each case names its HTTP status.</summary>
public abstract record DeleteResult
{
    private DeleteResult() { }

    /// <summary>200 with the body: "deleted" when files were removed, "cancelled" when a download was stopped before it left any.</summary>
    public sealed record Removed(DeleteResponse Response) : DeleteResult;

    /// <summary>404 <c>{"detail": Detail}</c>: nothing cached and nothing downloading.</summary>
    public sealed record NotFound(string Detail) : DeleteResult;
}

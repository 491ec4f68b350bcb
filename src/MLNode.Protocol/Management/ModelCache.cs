namespace MLNode.Protocol.Management;

/// <summary>A Hugging Face repository at an optional commit, the body of /api/v1/models/{status,download} and DELETE.</summary>
public sealed record HfModelRef(string HfRepo, string? HfCommit = null) : IValidatedRequest
{
    public IEnumerable<FieldError> Validate()
    {
        if (!HubRepoId.IsValid(HfRepo))
            yield return new FieldError("body.hf_repo", $"'{HfRepo}' is not a repository id of the form owner/name");
        if (HfCommit is not null && !HubRepoId.IsValidRevision(HfCommit))
            yield return new FieldError("body.hf_commit", $"'{HfCommit}' is not a commit hash, branch or tag");
    }
}

public enum ModelCacheStatus { Downloaded, Downloading, NotFound, Partial }

public sealed record DownloadProgress(double StartTime, double ElapsedSeconds);

public sealed record ModelStatusResponse(HfModelRef Model, ModelCacheStatus Status, DownloadProgress? Progress, string? ErrorMessage);

public sealed record DownloadResponse(string TaskId, string Status, HfModelRef Model);

public sealed record DeleteResponse(string Status, HfModelRef Model);

public sealed record ModelListEntry(HfModelRef Model, ModelCacheStatus Status);

public sealed record ModelListResponse(IReadOnlyList<ModelListEntry> Models);

public sealed record SpaceResponse(double CacheSizeGb, double AvailableGb, string CachePath);

/// <summary>Syntax of hub ids and revisions, strict enough that neither can escape the cache folder.</summary>
public static class HubRepoId
{
    public static bool IsValid(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > 200) return false;
        var parts = id.Split('/');
        return parts.Length == 2 && parts.All(IsNamePart);
    }

    public static bool IsValidRevision(string? revision) =>
        !string.IsNullOrEmpty(revision) && revision.Length <= 128 && IsNamePart(revision);

    private static bool IsNamePart(string part) =>
        part.Length > 0 && part != "." && part != ".." && !part.StartsWith('-')
        && part.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');
}

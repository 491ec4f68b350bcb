using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MLNode.Runtime.Registry;

namespace MLNode.Runtime.Hub;

/// <summary>One file of a hub revision. Its blob is named by <see cref="Sha256"/> for an LFS file, by the git blob id otherwise.</summary>
public sealed record HubFile(string Path, long Size, string GitBlobId, string? Sha256)
{
    public string BlobName => Sha256 ?? GitBlobId;
}

/// <summary>A revision as the hub lists it: the commit it resolves to and every file with the hash it must have.</summary>
public sealed record HubRevision(string Commit, IReadOnlyList<HubFile> Files);

/// <summary>An answer of the hub that asking again will not change (no such repository or revision, a listing this worker refuses).</summary>
public sealed class PermanentHubException(string message) : Exception(message);

/// <summary>
/// Fills <see cref="HubCache"/> from a Hugging Face-compatible endpoint: <c>GET /api/models/{repo}/revision/{revision}?blobs=true</c>
/// for the listing, <c>GET /{repo}/resolve/{commit}/{path}</c> for each file. A file streams into
/// <c>blobs/&lt;name&gt;.incomplete</c> (resumed with a range request after a failed attempt, as huggingface_hub does),
/// is hashed on the way and becomes a blob only when its hash matches its name. Takes the HttpClient from
/// the caller (IHttpClientFactory, or one with a bounded PooledConnectionLifetime); redirects to a CDN are
/// followed and .NET drops the Authorization header on them.
/// </summary>
public sealed class HubClient(HttpClient http, HubCache cache, IOptions<HubOptions> options, ILogger<HubClient> logger)
{
    private const string Incomplete = ".incomplete";
    private const int BufferBytes = 1 << 20;

    private readonly HubOptions _options = options.Value;
    private readonly Uri _endpoint = new(options.Value.Endpoint.TrimEnd('/') + "/");

    public async Task<HubRevision> GetRevisionAsync(string repo, string revision, CancellationToken ct)
    {
        _ = cache.RepoFolder(repo); // rejects an id that is no owner/name before it becomes part of a URL
        using var request = Request($"api/models/{repo}/revision/{Uri.EscapeDataString(revision)}?blobs=true");
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden or HttpStatusCode.NotFound)
            throw new PermanentHubException(NotFound(repo, revision, response));
        response.EnsureSuccessStatusCode();
        RevisionJson? listing;
        try
        {
            listing = await response.Content.ReadFromJsonAsync<RevisionJson>(JsonSerializerOptions.Web, ct);
        }
        catch (JsonException e)
        {
            throw new PermanentHubException($"{repo}@{revision}: the hub's listing is not valid JSON: {e.Message}");
        }
        return Validate(repo, revision, listing);
    }

    /// <summary>
    /// Fetches every file of a revision (null = main) that the cache lacks and links the snapshot; returns its
    /// commit. Files fail independently so one bad file does not waste the others' bytes; any failure fails the
    /// call after the rest have finished.
    /// </summary>
    public async Task<string> DownloadSnapshotAsync(string repo, string? revision, ProgressMeter meter, CancellationToken ct)
    {
        revision ??= "main";
        var listing = await GetRevisionAsync(repo, revision, ct);
        // Written before any file (the ref as huggingface_hub does): a download that fails half-way leaves a
        // snapshot the ref leads to and the file list shows to be PARTIAL.
        if (!HubCache.IsGitHash(revision))
            cache.WriteRef(repo, revision, listing.Commit);
        cache.RecordFileList(repo, listing.Commit, listing.Files.Select(f => f.Path).ToList());

        // Files with equal content (empty __init__.py files, say) share one blob, fetched once.
        var blobs = listing.Files.GroupBy(f => f.BlobName).ToList();
        var pending = blobs.Select(b => b.First()).Where(f => !File.Exists(cache.BlobPath(repo, f.BlobName))).ToList();
        meter.Plan(pending.Sum(f => f.Size - ResumableBytes(repo, f)));
        logger.LogInformation("{Repo}@{Commit}: {Files} files, {Pending} blobs to fetch ({Gb:F2} GB)",
            repo, listing.Commit, listing.Files.Count, pending.Count, meter.PlannedBytes / 1e9);

        var failures = new ConcurrentQueue<string>();
        await Parallel.ForEachAsync(blobs, new ParallelOptions { MaxDegreeOfParallelism = _options.MaxParallelFiles, CancellationToken = ct },
            async (sameBlob, token) =>
            {
                try
                {
                    await FetchBlobAsync(repo, listing.Commit, sameBlob.First(), meter, token);
                    foreach (var file in sameBlob)
                        cache.LinkSnapshotFile(repo, listing.Commit, file.Path, file.BlobName);
                }
                catch (Exception e) when (!token.IsCancellationRequested)
                {
                    failures.Enqueue($"{string.Join(", ", sameBlob.Select(f => f.Path))}: {e.Message}");
                }
            });
        ct.ThrowIfCancellationRequested();
        if (!failures.IsEmpty)
            throw new IOException($"{repo}@{listing.Commit}: {string.Join("; ", failures.Order(StringComparer.Ordinal))}");
        return listing.Commit;
    }

    /// <summary>Streams a file into <c>blobs/&lt;name&gt;.incomplete</c>, resuming what an earlier attempt left, and renames it once its hash matches; nothing to do when the blob exists.</summary>
    private async Task FetchBlobAsync(string repo, string commit, HubFile file, ProgressMeter meter, CancellationToken ct)
    {
        var blob = cache.BlobPath(repo, file.BlobName);
        if (File.Exists(blob)) return;
        var partial = blob + Incomplete;
        Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
        var buffer = new byte[BufferBytes];
        using var hasher = new BlobHasher(file);
        try
        {
            // FileShare.None takes an exclusive lock, so two downloads sharing a blob cannot interleave their bytes.
            await using var output = new FileStream(partial, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 0, FileOptions.Asynchronous);
            if (output.Length > file.Size) output.SetLength(0);
            await hasher.AppendAsync(output, buffer, ct);
            if (output.Length < file.Size)
                await ReceiveAsync(repo, commit, file, output, hasher, buffer, meter, ct);
            if (output.Length != file.Size)
                throw new IOException($"received {output.Length} of {file.Size} bytes");
            if (hasher.Mismatch() is { } actual)
                throw new InvalidDataException($"{hasher.Algorithm} of the received bytes is {actual}, expected {file.BlobName}; the file was refused");
        }
        catch (InvalidDataException)
        {
            File.Delete(partial); // wrong bytes are no start to resume from
            throw;
        }
        File.Move(partial, blob, overwrite: true);
        logger.LogDebug("{Repo}: fetched {Path} ({Bytes} bytes)", repo, file.Path, file.Size);
    }

    private async Task ReceiveAsync(string repo, string commit, HubFile file, FileStream output, BlobHasher hasher, byte[] buffer, ProgressMeter meter, CancellationToken ct)
    {
        var offset = output.Length;
        var path = string.Join('/', file.Path.Split('/').Select(Uri.EscapeDataString));
        using var request = Request($"{repo}/resolve/{commit}/{path}");
        if (offset > 0) request.Headers.Range = new RangeHeaderValue(offset, null);
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        response.EnsureSuccessStatusCode();
        if (response.StatusCode != HttpStatusCode.PartialContent)
        {
            offset = 0; // the whole file came back: start it over
            output.SetLength(0);
            hasher.Restart();
        }
        else if (response.Content.Headers.ContentRange?.From != offset)
            throw new IOException($"asked for bytes from {offset}, the server sent range '{response.Content.Headers.ContentRange}'");

        await using var body = await response.Content.ReadAsStreamAsync(ct);
        int n;
        while ((n = await body.ReadAsync(buffer, ct)) > 0)
        {
            if (offset + n > file.Size)
                throw new InvalidDataException($"the server sent more than the {file.Size} bytes the listing gives");
            await output.WriteAsync(buffer.AsMemory(0, n), ct);
            hasher.Append(buffer.AsSpan(0, n));
            offset += n;
            meter.Add(n);
        }
    }

    /// <summary>Bytes an earlier attempt left in the file's <c>.incomplete</c> blob that a range request will not fetch again.</summary>
    private long ResumableBytes(string repo, HubFile file) =>
        new FileInfo(cache.BlobPath(repo, file.BlobName) + Incomplete) is { Exists: true, Length: var length } && length <= file.Size ? length : 0;

    private HttpRequestMessage Request(string relative)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, new Uri(_endpoint, relative));
        if (_options.Token is { } token)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return request;
    }

    private static string NotFound(string repo, string revision, HttpResponseMessage response)
    {
        var code = response.Headers.TryGetValues("X-Error-Code", out var codes) ? codes.FirstOrDefault() : null;
        var detail = response.Headers.TryGetValues("X-Error-Message", out var messages) ? $": {messages.FirstOrDefault()}" : "";
        return code == "RevisionNotFound"
            ? $"Revision not found: {revision} of {repo}{detail}"
            : $"Repository not found or not accessible: {repo} (HTTP {(int)response.StatusCode}){detail}";
    }

    /// <summary>
    /// Everything in a listing becomes a path or a file name in the cache, so a listing with one path that leaves
    /// the snapshot, one malformed hash or one duplicate is refused whole: a hostile endpoint writes nothing.
    /// </summary>
    private static HubRevision Validate(string repo, string revision, RevisionJson? listing)
    {
        var where = $"{repo}@{revision}";
        if (listing?.Sha is not { } commit || !HubCache.IsGitHash(commit))
            throw new PermanentHubException($"{where}: the hub's listing has no commit hash ('{listing?.Sha}')");
        if (HubCache.IsGitHash(revision) && commit != revision)
            throw new PermanentHubException($"{where}: the hub answered commit {commit}");

        var problems = new List<string>();
        var files = new List<HubFile>();
        var paths = new HashSet<string>(StringComparer.Ordinal);
        foreach (var sibling in listing.Siblings ?? [])
        {
            var path = sibling.Rfilename ?? "";
            var size = sibling.Lfs?.Size ?? sibling.Size;
            if (!ModelPaths.IsSafeRelative(path))
                problems.Add($"'{path}' is not a relative path inside the snapshot");
            else if (!paths.Add(path))
                problems.Add($"'{path}' is listed twice");
            else if (size is not >= 0)
                problems.Add($"'{path}' has no size");
            else if (!HubCache.IsGitHash(sibling.BlobId))
                problems.Add($"'{path}' has no git blob id ('{sibling.BlobId}')");
            else if (sibling.Lfs is not null && !HubCache.IsSha256(sibling.Lfs.Sha256))
                problems.Add($"'{path}' has no SHA-256 ('{sibling.Lfs.Sha256}')");
            else
                files.Add(new HubFile(path, size.Value, sibling.BlobId!, sibling.Lfs?.Sha256));
        }
        if (problems.Count > 0)
            throw new PermanentHubException($"{where}: the hub's listing was refused: {string.Join("; ", problems)}");
        return new HubRevision(commit, files);
    }

    private sealed record RevisionJson(string? Sha, IReadOnlyList<SiblingJson>? Siblings);

    private sealed record SiblingJson(string? Rfilename, long? Size, string? BlobId, LfsJson? Lfs);

    private sealed record LfsJson(string? Sha256, long? Size);
}

using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Xunit;

namespace MLNode.Runtime.Tests.Hub;

/// <summary>A file of a fake repository; <see cref="Served"/> is what the server sends, the content unless a test corrupts it.</summary>
internal sealed record FakeFile(string Path, byte[] Content, bool Lfs)
{
    public byte[] Served { get; init; } = Content;
    public string Sha256 => Convert.ToHexStringLower(SHA256.HashData(Content));
    public string GitBlobId => Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {Content.Length}\0"), .. Content]));
    public string BlobName => Lfs ? Sha256 : GitBlobId;

    public static FakeFile Text(string path, string text) => new(path, Encoding.UTF8.GetBytes(text), Lfs: false);

    /// <summary>Deterministic pseudo-random bytes, stored in LFS like weights are.</summary>
    public static FakeFile Weights(string path, int bytes, int seed = 1)
    {
        var content = new byte[bytes];
        new Random(seed).NextBytes(content);
        return new FakeFile(path, content, Lfs: true);
    }
}

internal enum Fault
{
    /// <summary>Answers 500.</summary>
    ServerError,
    /// <summary>Sends half the file, then nothing until the client gives up.</summary>
    Stall,
    /// <summary>Sends half the file, then drops the connection.</summary>
    Cut,
    /// <summary>Sends the file in 8 slices 40 ms apart.</summary>
    Slow,
}

/// <summary>
/// A Hugging Face-compatible endpoint on loopback (Kestrel, port chosen by the OS): the revision listing with
/// <c>?blobs=true</c> fields and <c>resolve</c> downloads with range support, plus faults a test queues per file.
/// </summary>
internal sealed class FakeHub : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<(string Repo, string Revision), (string Commit, FakeFile[] Files)> _revisions = new();
    private readonly ConcurrentDictionary<string, ConcurrentQueue<Fault>> _faults = new();
    private volatile TaskCompletionSource _gate = Completed();

    private FakeHub(WebApplication app) => _app = app;

    public string Endpoint => _app.Urls.Single();

    /// <summary>"listing repo@revision" or "file path[ range]" per request, with the Authorization header seen.</summary>
    public ConcurrentQueue<(string Request, string? Authorization)> Requests { get; } = new();

    public int Count(string request) => Requests.Count(r => r.Request == request);

    public static async Task<FakeHub> StartAsync(CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var hub = new FakeHub(app);
        app.Run(hub.HandleAsync);
        await app.StartAsync(ct);
        return hub;
    }

    /// <summary>Publishes a commit, reachable by its hash and by <paramref name="refs"/> (branches or tags).</summary>
    public void Add(string repo, string commit, FakeFile[] files, params string[] refs)
    {
        foreach (var revision in refs.Append(commit))
            _revisions[(repo, revision)] = (commit, files);
    }

    public void Inject(string path, params Fault[] faults)
    {
        var queue = _faults.GetOrAdd(path, _ => new ConcurrentQueue<Fault>());
        foreach (var fault in faults) queue.Enqueue(fault);
    }

    /// <summary>File requests wait until <see cref="ReleaseFiles"/>; listings are still answered.</summary>
    public void HoldFiles() => _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void ReleaseFiles() => _gate.TrySetResult();

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        ReleaseFiles();
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
        _stopping.Dispose();
    }

    private async Task HandleAsync(HttpContext context)
    {
        using var aborted = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
        var authorization = context.Request.Headers.Authorization.FirstOrDefault();
        var parts = context.Request.Path.Value!.TrimStart('/').Split('/');
        if (parts is ["api", "models", var owner, var name, "revision", var revision] && context.Request.Query["blobs"] == "true")
        {
            Requests.Enqueue(($"listing {owner}/{name}@{revision}", authorization));
            await ListingAsync(context, $"{owner}/{name}", revision);
        }
        else if (parts is [var o, var n, "resolve", var commit, .. var rest] && rest.Length > 0)
        {
            var path = string.Join('/', rest);
            var range = context.Request.Headers.Range.FirstOrDefault();
            Requests.Enqueue(($"file {path}{(range is null ? "" : " " + range)}", authorization));
            await _gate.Task.WaitAsync(aborted.Token);
            await FileAsync(context, $"{o}/{n}", commit, path, range, aborted.Token);
        }
        else
            context.Response.StatusCode = 400;
    }

    private async Task ListingAsync(HttpContext context, string repo, string revision)
    {
        if (!_revisions.TryGetValue((repo, revision), out var found))
        {
            var repoExists = _revisions.Keys.Any(k => k.Repo == repo);
            context.Response.StatusCode = repoExists ? 404 : 401;
            context.Response.Headers["X-Error-Code"] = repoExists ? "RevisionNotFound" : "RepoNotFound";
            return;
        }
        var siblings = found.Files.Select(f => f.Lfs
            ? (object)new { rfilename = f.Path, size = f.Content.Length, blobId = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes("pointer " + f.Path))), lfs = new { sha256 = f.Sha256, size = f.Content.Length, pointerSize = 134 } }
            : new { rfilename = f.Path, size = f.Content.Length, blobId = f.GitBlobId });
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(JsonSerializer.Serialize(new { id = repo, sha = found.Commit, siblings }));
    }

    private async Task FileAsync(HttpContext context, string repo, string commit, string path, string? range, CancellationToken ct)
    {
        var file = _revisions.TryGetValue((repo, commit), out var found) ? found.Files.FirstOrDefault(f => f.Path == path) : null;
        if (file is null || found.Commit != commit)
        {
            context.Response.StatusCode = 404;
            return;
        }
        var fault = _faults.TryGetValue(path, out var queue) && queue.TryDequeue(out var next) ? next : (Fault?)null;
        if (fault == Fault.ServerError)
        {
            context.Response.StatusCode = 500;
            return;
        }
        var from = range is null ? 0 : int.Parse(range["bytes=".Length..].TrimEnd('-'));
        var body = file.Served.AsMemory(from);
        if (range is not null)
        {
            context.Response.StatusCode = 206;
            context.Response.Headers.ContentRange = $"bytes {from}-{file.Served.Length - 1}/{file.Served.Length}";
        }
        context.Response.ContentLength = body.Length;
        switch (fault)
        {
            case Fault.Stall or Fault.Cut:
                await context.Response.Body.WriteAsync(body[..(body.Length / 2)], ct);
                await context.Response.Body.FlushAsync(ct);
                if (fault == Fault.Stall)
                    await Task.Delay(Timeout.Infinite, ct);
                await Task.Delay(100, ct); // lets the client read the half before the connection drops
                context.Abort();
                return;
            case Fault.Slow:
                for (var i = 0; i < 8; i++)
                {
                    await context.Response.Body.WriteAsync(body[(body.Length * i / 8)..(body.Length * (i + 1) / 8)], ct);
                    await context.Response.Body.FlushAsync(ct);
                    await Task.Delay(40, ct);
                }
                return;
            default:
                await context.Response.Body.WriteAsync(body, ct);
                return;
        }
    }

    private static TaskCompletionSource Completed()
    {
        var done = new TaskCompletionSource();
        done.SetResult();
        return done;
    }
}

using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Protocol.Management;
using MLNode.Runtime.Hub;
using MLNode.Runtime.Registry;
using Xunit;

namespace MLNode.Runtime.Tests.Hub;

public sealed class ModelDownloadsTests
{
    private const string Repo = "acme/tiny";
    private const string Commit = "1111111111111111111111111111111111111111";
    private static readonly HfModelRef Latest = new(Repo);

    private static readonly FakeFile Config = FakeFile.Text("config.json", """{"architectures":["Qwen3ForCausalLM"]}""");
    private static readonly FakeFile Vocab = FakeFile.Text("tokenizer/vocab.txt", "a\nb\nc\n");
    private static readonly FakeFile Model = FakeFile.Weights("model.safetensors", 64 * 1024);

    private static async Task<HubTestbed> WithTinyRepoAsync(Action<HubOptions>? configure = null)
    {
        var bed = await HubTestbed.StartAsync(configure);
        bed.Hub.Add(Repo, Commit, [Config, Vocab, Model], "main");
        return bed;
    }

    private static DownloadResponse Accepted(DownloadStartResult result) =>
        Assert.IsType<DownloadStartResult.Accepted>(result).Response;

    [Fact(Timeout = 10_000)]
    public async Task Ensure_downloads_a_missing_model_once_and_returns_its_snapshot()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var bed = await WithTinyRepoAsync();
        var snapshot = await bed.Downloads.EnsureAsync(Latest, ct);
        Assert.Equal(bed.Cache.FindSnapshot(Repo, null), snapshot);
        Assert.Equal(Model.Content, File.ReadAllBytes(Path.Combine(snapshot, "model.safetensors")));
        var fetched = bed.Hub.Requests.Count;
        // A second start on the cached model asks the hub nothing.
        Assert.Equal(snapshot, await bed.Downloads.EnsureAsync(Latest, ct));
        Assert.Equal(fetched, bed.Hub.Requests.Count);
    }

    [Fact(Timeout = 10_000)]
    public async Task Ensure_fails_clearly_offline_and_for_unknown_repositories()
    {
        var ct = TestContext.Current.CancellationToken;
        await using (var offline = await WithTinyRepoAsync(o => o.Offline = true))
            Assert.Contains("HF_HUB_OFFLINE", (await Assert.ThrowsAsync<InvalidOperationException>(() => offline.Downloads.EnsureAsync(Latest, ct))).Message);
        await using var bed = await WithTinyRepoAsync();
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => bed.Downloads.EnsureAsync(new HfModelRef("acme/missing"), ct));
        Assert.Contains("acme/missing:latest did not complete", error.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task Download_writes_the_huggingface_cache_layout()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var bed = await WithTinyRepoAsync();

        Assert.Equal(new DownloadResponse($"{Repo}:latest", "DOWNLOADING", Latest), Accepted(bed.Downloads.Start(Latest)));
        Assert.Equal(ModelCacheStatus.Downloaded, (await bed.SettledAsync(Latest, ct)).Status);

        var repoFolder = Path.Combine(bed.Options.HfHome, "hub", "models--acme--tiny");
        Assert.Equal(Commit, File.ReadAllText(Path.Combine(repoFolder, "refs", "main")));
        var snapshot = Path.Combine(repoFolder, "snapshots", Commit);
        Assert.Equal($"../../blobs/{Config.GitBlobId}", new FileInfo(Path.Combine(snapshot, "config.json")).LinkTarget);
        Assert.Equal($"../../../blobs/{Vocab.GitBlobId}", new FileInfo(Path.Combine(snapshot, "tokenizer", "vocab.txt")).LinkTarget);
        Assert.Equal($"../../blobs/{Model.Sha256}", new FileInfo(Path.Combine(snapshot, "model.safetensors")).LinkTarget);
        foreach (var file in new[] { Config, Vocab, Model })
            Assert.Equal(file.Content, File.ReadAllBytes(Path.Combine(snapshot, file.Path)));
        Assert.Equal([Config.GitBlobId, Model.Sha256, Vocab.GitBlobId],
            Directory.GetFiles(Path.Combine(repoFolder, "blobs")).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!);
        Assert.All(bed.Hub.Requests, r => Assert.Equal("Bearer test-token", r.Authorization));
        Assert.True(File.Exists(Path.Combine(repoFolder, ".mlnode", $"files-{Commit}.json")));
        Assert.Equal(snapshot, bed.Cache.FindSnapshot(Repo, null));
        Assert.Equal(ModelCacheStatus.Downloaded, bed.Cache.Status(Repo, Commit));
    }

    [Fact(Timeout = 10_000)]
    public async Task Files_with_equal_content_share_one_blob_fetched_once()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var bed = await HubTestbed.StartAsync();
        FakeFile[] files = [FakeFile.Text("a/__init__.py", ""), FakeFile.Text("b/__init__.py", ""), FakeFile.Text("LICENSE", "MIT"), FakeFile.Text("docs/LICENSE", "MIT")];
        bed.Hub.Add(Repo, Commit, files, "main");

        Accepted(bed.Downloads.Start(Latest));

        Assert.Equal(ModelCacheStatus.Downloaded, (await bed.SettledAsync(Latest, ct)).Status);
        Assert.Equal(1, bed.Hub.Count("file LICENSE") + bed.Hub.Count("file docs/LICENSE"));
        Assert.Equal(0, bed.Hub.Count("file a/__init__.py") + bed.Hub.Count("file b/__init__.py")); // an empty file's blob needs no request
        var snapshot = bed.Cache.FindSnapshot(Repo, null)!;
        Assert.All(files, f => Assert.Equal(f.Content, File.ReadAllBytes(Path.Combine(snapshot, f.Path))));
        Assert.Equal(2, Directory.GetFiles(Path.Combine(bed.Cache.RepoFolder(Repo), "blobs")).Length);
    }

    [Fact(Timeout = 10_000)]
    public async Task Lfs_hashes_of_a_downloaded_snapshot_verify_and_catch_a_changed_blob()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var bed = await WithTinyRepoAsync();
        bed.Downloads.Start(Latest);
        await bed.SettledAsync(Latest, ct);
        var snapshot = bed.Cache.FindSnapshot(Repo, null)!;
        var files = HubCache.LfsFiles(snapshot);
        Assert.Equal([new ModelFile("model.safetensors", Model.Sha256)], files);

        await new WeightVerifier(NullLogger<WeightVerifier>.Instance).VerifyAsync(snapshot, files, ct);

        var blob = Path.Combine(bed.Cache.RepoFolder(Repo), "blobs", Model.Sha256);
        File.WriteAllBytes(blob, [.. Model.Content.Take(100)]);
        var failure = await Assert.ThrowsAsync<WeightVerificationException>(
            () => new WeightVerifier(NullLogger<WeightVerifier>.Instance).VerifyAsync(snapshot, files, ct));
        Assert.Contains("model.safetensors: SHA-256 is", failure.Message);
    }

    [Fact(Timeout = 10_000)]
    public async Task Status_goes_from_not_found_through_downloading_to_downloaded()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var bed = await WithTinyRepoAsync();
        Assert.Equal(new ModelStatusResponse(Latest, ModelCacheStatus.NotFound, null, null), bed.Downloads.Status(Latest));

        bed.Hub.HoldFiles();
        var before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        Accepted(bed.Downloads.Start(Latest));
        var downloading = bed.Downloads.Status(Latest);
        Assert.Equal(ModelCacheStatus.Downloading, downloading.Status);
        Assert.NotNull(downloading.Progress);
        Assert.InRange(downloading.Progress.StartTime, before - 1, before + 5);
        Assert.InRange(downloading.Progress.ElapsedSeconds, 0, 5);
        Assert.Null(downloading.ErrorMessage);

        bed.Hub.ReleaseFiles();
        Assert.Equal(new ModelStatusResponse(Latest, ModelCacheStatus.Downloaded, null, null), await bed.SettledAsync(Latest, ct));

        var requests = bed.Hub.Requests.Count;
        Assert.Equal(new DownloadResponse($"{Repo}:latest", "DOWNLOADED", Latest), Accepted(bed.Downloads.Start(Latest)));
        Assert.Equal(requests, bed.Hub.Requests.Count);
    }

    [Fact(Timeout = 10_000)]
    public async Task Same_task_conflicts_and_a_fourth_download_is_too_many()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var bed = await WithTinyRepoAsync();
        var models = new[] { "acme/a", "acme/b", "acme/c", "acme/d" }.Select(r => new HfModelRef(r)).ToArray();
        foreach (var (model, i) in models.Select((m, i) => (m, i)))
            bed.Hub.Add(model.HfRepo, new string((char)('a' + i), 40), [FakeFile.Text($"f{i}.txt", $"file {i}")], "main");
        bed.Hub.HoldFiles();

        foreach (var model in models[..3]) Accepted(bed.Downloads.Start(model));
        Assert.Equal(new DownloadStartResult.AlreadyDownloading("Model acme/a:latest is already downloading"), bed.Downloads.Start(models[0]));
        Assert.Equal(new DownloadStartResult.TooManyDownloads("Maximum concurrent downloads (3) reached"), bed.Downloads.Start(models[3]));

        bed.Hub.ReleaseFiles();
        foreach (var model in models[..3]) Assert.Equal(ModelCacheStatus.Downloaded, (await bed.SettledAsync(model, ct)).Status);
        Assert.Equal("DOWNLOADING", Accepted(bed.Downloads.Start(models[3])).Status);
        Assert.Equal(ModelCacheStatus.Downloaded, (await bed.SettledAsync(models[3], ct)).Status);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_file_failing_past_the_retries_leaves_a_partial_snapshot_with_the_error()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var bed = await WithTinyRepoAsync(o => o.MaxRetries = 2);
        bed.Hub.Inject(Model.Path, Fault.ServerError, Fault.ServerError, Fault.ServerError);

        Accepted(bed.Downloads.Start(Latest));
        var status = await bed.SettledAsync(Latest, ct);

        Assert.Equal(ModelCacheStatus.Partial, status.Status);
        Assert.Contains("model.safetensors", status.ErrorMessage);
        Assert.Contains("500", status.ErrorMessage);
        Assert.Equal(3, bed.Hub.Count("file model.safetensors"));
        Assert.Equal(1, bed.Hub.Count("file config.json"));
        Assert.Equal([new ModelListEntry(new HfModelRef(Repo, Commit), ModelCacheStatus.Partial)], bed.Cache.List());
        Assert.Contains(bed.Logs, l => l.StartsWith("Warning: Download acme/tiny:latest attempt 2/3 failed", StringComparison.Ordinal));
    }

    [Fact(Timeout = 10_000)]
    public async Task Transient_server_errors_are_retried_until_the_download_succeeds()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var bed = await WithTinyRepoAsync();
        bed.Hub.Inject(Model.Path, Fault.ServerError, Fault.ServerError);

        Accepted(bed.Downloads.Start(Latest));

        Assert.Equal(new ModelStatusResponse(Latest, ModelCacheStatus.Downloaded, null, null), await bed.SettledAsync(Latest, ct));
        Assert.Equal(3, bed.Hub.Count("file model.safetensors"));
    }

    [Fact(Timeout = 10_000)]
    public async Task A_dropped_connection_resumes_with_a_range_request()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var bed = await WithTinyRepoAsync();
        bed.Hub.Inject(Model.Path, Fault.Cut);

        Accepted(bed.Downloads.Start(Latest));

        Assert.Equal(ModelCacheStatus.Downloaded, (await bed.SettledAsync(Latest, ct)).Status);
        Assert.Equal(1, bed.Hub.Count($"file model.safetensors bytes={Model.Content.Length / 2}-"));
        Assert.Equal(Model.Content, File.ReadAllBytes(Path.Combine(bed.Cache.FindSnapshot(Repo, null)!, Model.Path)));
    }

    [Fact(Timeout = 10_000)]
    public async Task Bytes_that_do_not_match_the_lfs_sha256_are_refused()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var bed = await HubTestbed.StartAsync(o => o.MaxRetries = 1);
        var corrupt = Model with { Served = [.. Model.Content.Select(b => (byte)~b)] };
        bed.Hub.Add(Repo, Commit, [Config, corrupt], "main");

        Accepted(bed.Downloads.Start(Latest));
        var status = await bed.SettledAsync(Latest, ct);

        Assert.Equal(ModelCacheStatus.Partial, status.Status);
        var servedSha256 = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(corrupt.Served));
        Assert.Contains($"SHA-256 of the received bytes is {servedSha256}, expected {Model.Sha256}; the file was refused", status.ErrorMessage);
        Assert.Equal(2, bed.Hub.Count("file model.safetensors"));
        var blobs = Directory.GetFiles(Path.Combine(bed.Cache.RepoFolder(Repo), "blobs")).Select(Path.GetFileName);
        Assert.Equal([Config.GitBlobId], blobs);
        Assert.False(File.Exists(Path.Combine(bed.Cache.FindSnapshot(Repo, null)!, Model.Path)));
    }

    [Fact(Timeout = 10_000)]
    public async Task A_stalled_transfer_is_cancelled_and_retried()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var bed = await WithTinyRepoAsync(o => o.StallTimeout = TimeSpan.FromMilliseconds(300));
        bed.Hub.Inject(Model.Path, Fault.Stall);

        Accepted(bed.Downloads.Start(Latest));

        Assert.Equal(new ModelStatusResponse(Latest, ModelCacheStatus.Downloaded, null, null), await bed.SettledAsync(Latest, ct));
        Assert.Equal(2, bed.Hub.Requests.Count(r => r.Request.StartsWith("file model.safetensors", StringComparison.Ordinal)));
        Assert.Contains(bed.Logs, l => l.StartsWith("Warning: Download acme/tiny:latest stalled: no data for", StringComparison.Ordinal));
        Assert.Contains(bed.Logs, l => l.Contains("attempt 1/4 failed: download stalled: no data for 0.3 s", StringComparison.Ordinal));
    }

    [Fact(Timeout = 10_000)]
    public async Task Progress_is_logged_with_rate_and_eta()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var bed = await WithTinyRepoAsync();
        bed.Hub.Inject(Model.Path, Fault.Slow);

        Accepted(bed.Downloads.Start(Latest));
        await bed.SettledAsync(Latest, ct);

        Assert.Contains(bed.Logs, l => System.Text.RegularExpressions.Regex.IsMatch(l,
            @"^Information: Downloading acme/tiny:latest: \d+\.\d\d/\d+\.\d\d GB \(\d+\.\d MB/s, ETA \d\d:\d\d:\d\d\)$"));
    }

    [Fact]
    public async Task Offline_download_is_ignored_without_asking_the_hub()
    {
        await using var bed = await WithTinyRepoAsync(o => o.Offline = true);
        var pinned = new HfModelRef(Repo, Commit);

        Assert.Equal(new DownloadResponse($"{Repo}:latest:offline", "IGNORED", Latest), Accepted(bed.Downloads.Start(Latest)));
        Assert.Equal(new DownloadResponse($"{Repo}:{Commit}:offline", "IGNORED", pinned), Accepted(bed.Downloads.Start(pinned)));
        Assert.Equal(ModelCacheStatus.NotFound, bed.Downloads.Status(Latest).Status);
        Assert.Empty(bed.Hub.Requests);
    }

    [Fact(Timeout = 10_000)]
    public async Task Deleting_a_running_download_cancels_it()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var bed = await WithTinyRepoAsync();
        bed.Hub.HoldFiles();
        Accepted(bed.Downloads.Start(Latest));

        var result = await bed.Downloads.DeleteAsync(Latest, ct);

        Assert.Equal(new DeleteResult.Removed(new DeleteResponse("cancelled", Latest)), result);
        Assert.Equal(new ModelStatusResponse(Latest, ModelCacheStatus.NotFound, null, null), bed.Downloads.Status(Latest));
        Assert.False(Directory.Exists(bed.Cache.RepoFolder(Repo)));
        Assert.Contains(bed.Logs, l => l == "Information: Download acme/tiny:latest cancelled");
    }

    [Fact(Timeout = 10_000)]
    public async Task Deleting_by_commit_and_then_everything()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var bed = await WithTinyRepoAsync();
        const string older = "2222222222222222222222222222222222222222";
        bed.Hub.Add(Repo, older, [Config, FakeFile.Weights("model.safetensors", 1000, seed: 2)], "v1");
        var v1 = new HfModelRef(Repo, "v1");
        foreach (var model in new[] { Latest, v1 })
        {
            Accepted(bed.Downloads.Start(model));
            Assert.Equal(ModelCacheStatus.Downloaded, (await bed.SettledAsync(model, ct)).Status);
        }
        Assert.Equal(1, bed.Hub.Count("file config.json")); // the second revision found its blob in the cache
        Assert.Equal(
            [new ModelListEntry(new HfModelRef(Repo, Commit), ModelCacheStatus.Downloaded), new ModelListEntry(new HfModelRef(Repo, older), ModelCacheStatus.Downloaded)],
            bed.Cache.List());

        var byCommit = new HfModelRef(Repo, older);
        Assert.Equal(new DeleteResult.Removed(new DeleteResponse("deleted", byCommit)), await bed.Downloads.DeleteAsync(byCommit, ct));
        Assert.Equal(ModelCacheStatus.NotFound, bed.Downloads.Status(v1).Status);
        Assert.Equal(ModelCacheStatus.Downloaded, bed.Downloads.Status(Latest).Status);
        Assert.Equal(new DeleteResult.NotFound($"Revision {older} of {Repo} not found in cache"), await bed.Downloads.DeleteAsync(byCommit, ct));

        Assert.Equal(new DeleteResult.Removed(new DeleteResponse("deleted", Latest)), await bed.Downloads.DeleteAsync(Latest, ct));
        Assert.Empty(bed.Cache.List());
        Assert.Equal(new DeleteResult.NotFound($"Model {Repo}:latest not found in cache"), await bed.Downloads.DeleteAsync(Latest, ct));
    }

    [Theory(Timeout = 10_000)]
    [InlineData("../escape.txt")]
    [InlineData("../../../../../escape.txt")]
    [InlineData("sub/../../escape.txt")]
    [InlineData("/tmp/escape.txt")]
    [InlineData("sub\\..\\..\\escape.txt")]
    [InlineData("./escape.txt")]
    [InlineData("")]
    public async Task A_listing_with_a_path_outside_the_snapshot_is_refused_whole(string hostile)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var bed = await HubTestbed.StartAsync();
        bed.Hub.Add(Repo, Commit, [Config, FakeFile.Text(hostile, "owned")], "main");

        Accepted(bed.Downloads.Start(Latest));
        var status = await bed.SettledAsync(Latest, ct);

        Assert.Equal(ModelCacheStatus.NotFound, status.Status);
        Assert.Contains($"'{hostile}' is not a relative path inside the snapshot", status.ErrorMessage);
        Assert.Equal([$"listing {Repo}@main"], bed.Hub.Requests.Select(r => r.Request)); // refused, not retried, nothing fetched
        Assert.Empty(Directory.EnumerateFiles(bed.Sandbox, "*", SearchOption.AllDirectories));
    }

    [Fact(Timeout = 10_000)]
    public async Task An_unknown_repository_or_revision_is_not_retried()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var bed = await WithTinyRepoAsync();
        var unknownRepo = new HfModelRef("acme/missing");
        var unknownBranch = new HfModelRef(Repo, "nope");

        Accepted(bed.Downloads.Start(unknownRepo));
        Accepted(bed.Downloads.Start(unknownBranch));

        Assert.Equal("Repository not found or not accessible: acme/missing (HTTP 401)", (await bed.SettledAsync(unknownRepo, ct)).ErrorMessage);
        Assert.Equal("Revision not found: nope of acme/tiny", (await bed.SettledAsync(unknownBranch, ct)).ErrorMessage);
        Assert.Equal(2, bed.Hub.Requests.Count);
        Assert.Equal(ModelCacheStatus.NotFound, bed.Downloads.Status(unknownRepo).Status);
    }

    [Fact(Timeout = 10_000)]
    public async Task Disposing_cancels_running_downloads()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var bed = await WithTinyRepoAsync();
        bed.Hub.HoldFiles();
        Accepted(bed.Downloads.Start(Latest));

        await bed.Downloads.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(2), ct);

        Assert.Equal(ModelCacheStatus.NotFound, bed.Downloads.Status(Latest).Status);
        Assert.Throws<ObjectDisposedException>(() => bed.Downloads.Start(Latest));
    }
}

using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using MLNode.Protocol.Management;
using MLNode.Runtime.Hub;
using MLNode.Runtime.Registry;
using Xunit;

namespace MLNode.Runtime.Tests.Hub;

/// <summary>
/// Cache folders laid out by hand the way huggingface_hub writes them (a host migrating from the Python node has
/// them), and the worker's own file lists.
/// </summary>
public sealed class HubCacheTests : IDisposable
{
    private const string Repo = "acme/tiny";
    private const string C1 = "1111111111111111111111111111111111111111";
    private const string C2 = "2222222222222222222222222222222222222222";

    private static readonly byte[] ConfigBytes = Encoding.UTF8.GetBytes("""{"model_type":"qwen3"}""");
    private static readonly byte[] WeightBytes = Encoding.UTF8.GetBytes("pretend these are weights");
    private static readonly string ConfigBlob = Convert.ToHexStringLower(SHA1.HashData(ConfigBytes)); // any git-id-shaped name
    private static readonly string WeightBlob = Convert.ToHexStringLower(SHA256.HashData(WeightBytes));

    private readonly string _hfHome = Path.Combine(Directory.CreateTempSubdirectory("mlnode-hubcache-").FullName, "hf");
    private readonly HubCache _cache;

    public HubCacheTests() => _cache = new HubCache(Options.Create(new HubOptions { HfHome = _hfHome }));

    public void Dispose() => Directory.Delete(Path.GetDirectoryName(_hfHome)!, recursive: true);

    private string RepoFolder(string repo = Repo) => Path.Combine(_hfHome, "hub", "models--" + repo.Replace("/", "--"));

    private void Blob(string name, byte[] content, string repo = Repo)
    {
        Directory.CreateDirectory(Path.Combine(RepoFolder(repo), "blobs"));
        File.WriteAllBytes(Path.Combine(RepoFolder(repo), "blobs", name), content);
    }

    private void SparseBlob(string name, long length)
    {
        Blob(name, []);
        using var file = File.OpenWrite(Path.Combine(RepoFolder(), "blobs", name));
        file.SetLength(length);
    }

    /// <summary>A link with the relative target huggingface_hub writes (<c>os.path.relpath</c> from the link's folder).</summary>
    private void Link(string commit, string path, string blob, string repo = Repo)
    {
        var link = Path.Combine(RepoFolder(repo), "snapshots", commit, path);
        Directory.CreateDirectory(Path.GetDirectoryName(link)!);
        File.CreateSymbolicLink(link, string.Concat(Enumerable.Repeat("../", path.Count(c => c == '/') + 2)) + "blobs/" + blob);
    }

    private void Ref(string name, string commit, string repo = Repo)
    {
        Directory.CreateDirectory(Path.Combine(RepoFolder(repo), "refs"));
        File.WriteAllText(Path.Combine(RepoFolder(repo), "refs", name), commit);
    }

    private void CompleteSnapshot(string commit, string repo = Repo)
    {
        Blob(ConfigBlob, ConfigBytes, repo);
        Blob(WeightBlob, WeightBytes, repo);
        Link(commit, "config.json", ConfigBlob, repo);
        Link(commit, "model.safetensors", WeightBlob, repo);
    }

    [Fact]
    public void A_complete_snapshot_of_another_tool_resolves_through_refs_and_is_downloaded()
    {
        CompleteSnapshot(C1);
        Ref("main", C1);
        Ref("v1.0", C1);

        Assert.Equal(ModelCacheStatus.Downloaded, _cache.Status(Repo, null));
        Assert.Equal(ModelCacheStatus.Downloaded, _cache.Status(Repo, "main"));
        Assert.Equal(ModelCacheStatus.Downloaded, _cache.Status(Repo, "v1.0"));
        Assert.Equal(ModelCacheStatus.Downloaded, _cache.Status(Repo, C1));
        Assert.Equal(Path.Combine(RepoFolder(), "snapshots", C1), _cache.FindSnapshot(Repo, null));
        Assert.Equal(ModelCacheStatus.NotFound, _cache.Status(Repo, "dev"));
        Assert.Equal(ModelCacheStatus.NotFound, _cache.Status(Repo, C2));
        Assert.Equal(ModelCacheStatus.NotFound, _cache.Status("acme/other", null));
        Assert.Null(_cache.FindSnapshot(Repo, C2));
    }

    [Fact]
    public void A_dangling_link_makes_it_partial()
    {
        CompleteSnapshot(C1);
        Link(C1, "tokenizer/tokenizer.json", new string('a', 64));

        Assert.Equal(ModelCacheStatus.Partial, _cache.Status(Repo, C1));
    }

    [Fact]
    public void A_blob_still_being_written_makes_it_partial()
    {
        CompleteSnapshot(C1);
        Blob(new string('b', 64) + ".incomplete", [1, 2, 3]);

        Assert.Equal(ModelCacheStatus.Partial, _cache.Status(Repo, C1));
    }

    [Fact]
    public void An_empty_snapshot_is_partial()
    {
        Directory.CreateDirectory(Path.Combine(RepoFolder(), "snapshots", C1));

        Assert.Equal(ModelCacheStatus.Partial, _cache.Status(Repo, C1));
    }

    [Fact]
    public void A_recorded_file_list_decides_completeness()
    {
        CompleteSnapshot(C1);
        _cache.RecordFileList(Repo, C1, ["config.json", "model.safetensors", "tokenizer.json"]);
        Assert.Equal(ModelCacheStatus.Partial, _cache.Status(Repo, C1)); // nothing dangles, yet a listed file is missing

        Blob(ConfigBlob + ".incomplete", [0]); // another revision's download in progress
        _cache.RecordFileList(Repo, C1, ["config.json", "model.safetensors"]);
        Assert.Equal(ModelCacheStatus.Downloaded, _cache.Status(Repo, C1));
    }

    [Fact]
    public void List_reports_every_revision_of_every_model_repository()
    {
        CompleteSnapshot(C2);
        Link(C1, "config.json", ConfigBlob);
        Link(C1, "model.safetensors", new string('c', 64));
        CompleteSnapshot(C1, "zeta/big");
        CompleteSnapshot(C1, "gpt2"); // no owner: folder models--gpt2
        Directory.CreateDirectory(Path.Combine(RepoFolder(), "snapshots", "not-a-commit"));
        Directory.CreateDirectory(Path.Combine(_hfHome, "hub", "datasets--acme--data", "snapshots", C1));
        Directory.CreateDirectory(Path.Combine(_hfHome, "hub", ".locks", "models--acme--tiny"));

        Assert.Equal(
        [
            new ModelListEntry(new HfModelRef(Repo, C1), ModelCacheStatus.Partial),
            new ModelListEntry(new HfModelRef(Repo, C2), ModelCacheStatus.Downloaded),
            new ModelListEntry(new HfModelRef("zeta/big", C1), ModelCacheStatus.Downloaded),
        ], _cache.List());
    }

    [Fact]
    public void List_of_a_missing_cache_is_empty() => Assert.Empty(_cache.List());

    [Fact]
    public void Deleting_a_commit_keeps_shared_blobs_and_other_refs()
    {
        var onlyC1 = Convert.ToHexStringLower(SHA256.HashData("old weights"u8));
        Blob(ConfigBlob, ConfigBytes);
        Blob(WeightBlob, WeightBytes);
        Blob(onlyC1, Encoding.UTF8.GetBytes("old weights"));
        Link(C1, "config.json", ConfigBlob);
        Link(C1, "model.safetensors", onlyC1);
        Link(C2, "config.json", ConfigBlob);
        Link(C2, "model.safetensors", WeightBlob);
        Ref("main", C2);
        Ref("v1", C1);
        _cache.RecordFileList(Repo, C1, ["config.json", "model.safetensors"]);

        Assert.True(_cache.Delete(Repo, "v1"));

        Assert.False(Directory.Exists(Path.Combine(RepoFolder(), "snapshots", C1)));
        Assert.Equal(new[] { ConfigBlob, WeightBlob }.Order(StringComparer.Ordinal), Directory.GetFiles(Path.Combine(RepoFolder(), "blobs")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(["main"], Directory.GetFiles(Path.Combine(RepoFolder(), "refs")).Select(Path.GetFileName));
        Assert.Empty(Directory.GetFiles(Path.Combine(RepoFolder(), ".mlnode")));
        Assert.Equal(ModelCacheStatus.Downloaded, _cache.Status(Repo, null));
        Assert.False(_cache.Delete(Repo, C1));
        Assert.False(_cache.Delete(Repo, "v1"));

        Assert.True(_cache.Delete(Repo, C2)); // the last snapshot takes the folder with it
        Assert.False(Directory.Exists(RepoFolder()));
    }

    [Fact]
    public void Deleting_every_revision_removes_the_repository_folder()
    {
        CompleteSnapshot(C1);
        CompleteSnapshot(C2);
        Ref("main", C2);

        Assert.True(_cache.Delete(Repo, null));

        Assert.False(Directory.Exists(RepoFolder()));
        Assert.False(_cache.Delete(Repo, null));
    }

    [Fact]
    public void A_repository_with_only_a_ref_is_cleared_but_reported_as_nothing_deleted()
    {
        Ref("main", C1);
        Blob(WeightBlob + ".incomplete", [1]);

        Assert.False(_cache.Delete(Repo, null));
        Assert.False(Directory.Exists(RepoFolder()));
    }

    [Fact]
    public void Space_counts_each_blob_once_however_many_snapshots_link_it()
    {
        Assert.Equal(0, _cache.Space().CacheSizeGb);

        SparseBlob(WeightBlob, 3L << 30);
        SparseBlob(ConfigBlob, 512L << 20);
        foreach (var commit in new[] { C1, C2 })
        {
            Link(commit, "model.safetensors", WeightBlob);
            Link(commit, "config.json", ConfigBlob);
        }

        var space = _cache.Space();

        Assert.Equal(3.5, space.CacheSizeGb);
        Assert.Equal(Path.Combine(_hfHome, "hub"), space.CachePath);
        Assert.Equal(Math.Round(new DriveInfo(_hfHome).AvailableFreeSpace / (double)(1L << 30), 2), space.AvailableGb, 1);
        Assert.True(space.AvailableGb > 0);
    }

    [Fact]
    public async Task Lfs_files_of_a_snapshot_feed_the_weight_verifier()
    {
        var shard = Encoding.UTF8.GetBytes("second shard");
        var shardBlob = Convert.ToHexStringLower(SHA256.HashData(shard));
        CompleteSnapshot(C1);
        Blob(shardBlob, shard);
        Link(C1, "shards/part-2.safetensors", shardBlob);
        var snapshot = Path.Combine(RepoFolder(), "snapshots", C1);

        var files = HubCache.LfsFiles(snapshot);

        Assert.Equal([new ModelFile("model.safetensors", WeightBlob), new ModelFile("shards/part-2.safetensors", shardBlob)], files);
        var verifier = new WeightVerifier(NullLogger<WeightVerifier>.Instance);
        await verifier.VerifyAsync(snapshot, files, TestContext.Current.CancellationToken);

        File.Delete(Path.Combine(RepoFolder(), "blobs", shardBlob));
        var failure = await Assert.ThrowsAsync<WeightVerificationException>(() => verifier.VerifyAsync(snapshot, files, TestContext.Current.CancellationToken));
        Assert.Contains("shards/part-2.safetensors: missing", failure.Message);
    }

    [Fact]
    public void Names_that_could_leave_the_cache_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => _cache.RepoFolder("../etc"));
        Assert.Throws<ArgumentException>(() => _cache.Status(Repo, "../main"));
        Assert.Throws<ArgumentException>(() => _cache.BlobPath(Repo, "../../x"));
        Assert.Throws<ArgumentException>(() => _cache.WriteRef(Repo, "main", "../../x"));
        Assert.Throws<InvalidDataException>(() => _cache.LinkSnapshotFile(Repo, C1, "../escape", WeightBlob));
    }
}

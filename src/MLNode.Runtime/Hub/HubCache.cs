using System.Text.Json;
using Microsoft.Extensions.Options;
using MLNode.Protocol;
using MLNode.Protocol.Management;
using MLNode.Runtime.Registry;

namespace MLNode.Runtime.Hub;

/// <summary>
/// The Hugging Face hub cache exactly as huggingface_hub lays it out, so the folders a host's Python node
/// filled are used as they are: <c>hub/models--{owner}--{name}/</c> holds <c>refs/&lt;branch or tag&gt;</c>
/// (a commit hash), <c>blobs/&lt;name&gt;</c> (the SHA-256 of an LFS file, the git blob id of any other) and
/// <c>snapshots/&lt;commit&gt;/&lt;path&gt;</c>, relative links into <c>blobs/</c>. For a snapshot this worker
/// downloads, the hub's file list is kept in <c>.mlnode/files-&lt;commit&gt;.json</c> beside them (huggingface_hub
/// ignores the folder): such a snapshot is complete exactly when every listed file is there.
/// </summary>
public sealed class HubCache(IOptions<HubOptions> options)
{
    /// <summary>Hidden entries count: on Unix every name starting with '.' is "hidden", <c>.gitattributes</c> included.</summary>
    private static readonly EnumerationOptions Everything = new() { RecurseSubdirectories = true, AttributesToSkip = 0 };
    private static readonly EnumerationOptions TopLevel = new() { AttributesToSkip = 0 };
    private const string WorkerFolder = ".mlnode";

    public string Root { get; } = Path.GetFullPath(options.Value.HubCachePath);

    public string RepoFolder(string repo)
    {
        if (!HubRepoId.IsValid(repo))
            throw new ArgumentException($"'{repo}' is not a repository id of the form owner/name", nameof(repo));
        return Path.Combine(Root, "models--" + repo.Replace("/", "--"));
    }

    public string SnapshotFolder(string repo, string commit) => Path.Combine(RepoFolder(repo), "snapshots", RequireCommit(commit));

    public string BlobPath(string repo, string blobName) =>
        Path.Combine(RepoFolder(repo), "blobs", IsBlobName(blobName) ? blobName : throw new ArgumentException($"'{blobName}' is not a SHA-256 or git blob id", nameof(blobName)));

    /// <summary>The commit a revision names here: a commit hash as is, a branch or tag through <c>refs/</c> (null = main); null when no ref is recorded.</summary>
    public string? ResolveCommit(string repo, string? revision)
    {
        revision ??= "main";
        if (IsGitHash(revision)) return revision;
        if (!HubRepoId.IsValidRevision(revision))
            throw new ArgumentException($"'{revision}' is not a commit hash, branch or tag", nameof(revision));
        var reference = Path.Combine(RepoFolder(repo), "refs", revision);
        return File.Exists(reference) && File.ReadAllText(reference).Trim() is var commit && IsGitHash(commit) ? commit : null;
    }

    /// <summary>The snapshot folder of a revision (null = main), or null when the cache has none.</summary>
    public string? FindSnapshot(string repo, string? revision) =>
        ResolveCommit(repo, revision) is { } commit && SnapshotFolder(repo, commit) is var folder && Directory.Exists(folder) ? folder : null;

    public ModelCacheStatus Status(string repo, string? revision) =>
        ResolveCommit(repo, revision) is { } commit ? SnapshotStatus(RepoFolder(repo), commit) : ModelCacheStatus.NotFound;

    /// <summary>Every cached revision of every model repository, DOWNLOADED or PARTIAL, ordered by repository and commit.</summary>
    public IReadOnlyList<ModelListEntry> List()
    {
        if (!Directory.Exists(Root)) return [];
        var entries = new List<ModelListEntry>();
        foreach (var repoFolder in Directory.EnumerateDirectories(Root, "models--*").Order(StringComparer.Ordinal))
        {
            var snapshots = Path.Combine(repoFolder, "snapshots");
            // Folders of repositories without an owner ("models--gpt2") are skipped: no request could name them.
            if (RepoIdOf(Path.GetFileName(repoFolder)) is not { } repo || !Directory.Exists(snapshots)) continue;
            foreach (var commit in Directory.EnumerateDirectories(snapshots).Select(Path.GetFileName).OfType<string>().Where(IsGitHash).Order(StringComparer.Ordinal))
                entries.Add(new ModelListEntry(new HfModelRef(repo, commit), SnapshotStatus(repoFolder, commit)));
        }
        return entries;
    }

    /// <summary>
    /// Removes a revision (its snapshot, the blobs no other snapshot links to, the refs naming it) or, for a null
    /// revision, the whole repository folder; the folder also goes when its last snapshot does. True when a
    /// snapshot was removed: a folder holding only a ref and unfinished blobs is cleared but counts as nothing found.
    /// </summary>
    public bool Delete(string repo, string? revision)
    {
        var repoFolder = RepoFolder(repo);
        if (!Directory.Exists(repoFolder)) return false;
        var snapshots = Path.Combine(repoFolder, "snapshots");
        if (revision is null)
        {
            var hadSnapshot = Directory.Exists(snapshots) && Directory.EnumerateDirectories(snapshots).Any();
            Directory.Delete(repoFolder, recursive: true);
            return hadSnapshot;
        }
        if (FindSnapshot(repo, revision) is not { } snapshot) return false;
        var commit = Path.GetFileName(snapshot);
        var stillLinked = Directory.EnumerateDirectories(snapshots).Where(s => s != snapshot).SelectMany(LinkedBlobs).ToHashSet();
        var orphans = LinkedBlobs(snapshot).Where(b => !stillLinked.Contains(b)).ToList();

        Directory.Delete(snapshot, recursive: true);
        foreach (var blob in orphans) File.Delete(Path.Combine(repoFolder, "blobs", blob));
        foreach (var reference in RefsTo(repoFolder, commit)) File.Delete(reference);
        File.Delete(FileListPath(repoFolder, commit));
        if (!Directory.EnumerateDirectories(snapshots).Any())
            Directory.Delete(repoFolder, recursive: true);
        return true;
    }

    /// <summary>Bytes of every blob (each once, however many snapshots link it) and the space left on the cache's file system.</summary>
    public SpaceResponse Space()
    {
        long bytes = 0;
        if (Directory.Exists(Root))
            foreach (var blobs in Directory.EnumerateDirectories(Root, "*--*").Select(r => Path.Combine(r, "blobs")).Where(Directory.Exists))
                bytes += new DirectoryInfo(blobs).EnumerateFiles("*", TopLevel).Sum(f => f.Length);
        var available = new DriveInfo(NearestExistingFolder(Root)).AvailableFreeSpace;
        return new SpaceResponse(Gib(bytes), Gib(available), Root);
    }

    /// <summary>
    /// The files of a snapshot whose blob is named by its SHA-256 (the LFS files: weights, tokenizer.json) with that
    /// hash, for <see cref="WeightVerifier"/> when models.json lists no files. Small git-stored files are named by a
    /// git blob id, which is no SHA-256 of their content, and are left out.
    /// </summary>
    public static IReadOnlyList<ModelFile> LfsFiles(string snapshot) =>
        Directory.EnumerateFiles(snapshot, "*", Everything)
            .Select(f => new ModelFile(Path.GetRelativePath(snapshot, f).Replace('\\', '/'), Path.GetFileName(new FileInfo(f).LinkTarget) ?? ""))
            .Where(f => IsSha256(f.Sha256))
            .OrderBy(f => f.Path, StringComparer.Ordinal)
            .ToList();

    public void WriteRef(string repo, string revision, string commit)
    {
        if (!HubRepoId.IsValidRevision(revision) || IsGitHash(revision))
            throw new ArgumentException($"'{revision}' is not a branch or tag", nameof(revision));
        var repoFolder = RepoFolder(repo);
        WriteAtomically(repoFolder, Path.Combine(repoFolder, "refs", revision), RequireCommit(commit));
    }

    /// <summary>Links <c>snapshots/&lt;commit&gt;/&lt;path&gt;</c> to its blob with the relative target huggingface_hub writes.</summary>
    public void LinkSnapshotFile(string repo, string commit, string relativePath, string blobName)
    {
        var link = ModelPaths.Resolve(SnapshotFolder(repo, commit), relativePath);
        var folder = Path.GetDirectoryName(link)!;
        var target = Path.GetRelativePath(folder, BlobPath(repo, blobName));
        var existing = new FileInfo(link);
        if (existing.LinkTarget == target) return;
        Directory.CreateDirectory(folder);
        existing.Delete();
        File.CreateSymbolicLink(link, target);
    }

    /// <summary>
    /// Records the files the hub lists for a commit, before any is fetched: a file is linked into the snapshot only
    /// once its blob is verified, so from then on the snapshot is complete exactly when every one of them is there.
    /// </summary>
    public void RecordFileList(string repo, string commit, IReadOnlyList<string> files)
    {
        var repoFolder = RepoFolder(repo);
        WriteAtomically(repoFolder, FileListPath(repoFolder, RequireCommit(commit)), JsonSerializer.Serialize(new FileList(commit, files), GonkaJson.Options));
    }

    /// <summary>A git object id, of a commit or of a blob: 40 lower-case hex digits, as the hub writes them.</summary>
    public static bool IsGitHash(string? text) => IsLowerHex(text, 40);

    internal static bool IsSha256(string? text) => IsLowerHex(text, 64);

    private static string RequireCommit(string commit) =>
        IsGitHash(commit) ? commit : throw new ArgumentException($"'{commit}' is not a commit hash", nameof(commit));

    private static bool IsBlobName(string? text) => IsGitHash(text) || IsSha256(text);

    private static bool IsLowerHex(string? text, int length) => text?.Length == length && text.All(char.IsAsciiHexDigitLower);

    private static ModelCacheStatus SnapshotStatus(string repoFolder, string commit)
    {
        var snapshot = Path.Combine(repoFolder, "snapshots", commit);
        if (!Directory.Exists(snapshot)) return ModelCacheStatus.NotFound;
        var complete = ReadFileList(repoFolder, commit) is { } list
            ? list.Files.All(f => ModelPaths.IsSafeRelative(f) && ModelPaths.ExistingFile(Path.Combine(snapshot, f)) is not null)
            : LooksComplete(repoFolder, snapshot);
        return complete ? ModelCacheStatus.Downloaded : ModelCacheStatus.Partial;
    }

    /// <summary>
    /// A snapshot another tool wrote has no file list here. huggingface_hub links a file only once its blob is
    /// whole, so such a snapshot is complete when it has files, none of its links dangles and no blob of the
    /// repository is still being written.
    /// </summary>
    private static bool LooksComplete(string repoFolder, string snapshot)
    {
        var files = Directory.EnumerateFiles(snapshot, "*", Everything).ToList();
        var blobs = Path.Combine(repoFolder, "blobs");
        return files.Count > 0
            && files.All(f => ModelPaths.ExistingFile(f) is not null)
            && !(Directory.Exists(blobs) && Directory.EnumerateFiles(blobs, "*.incomplete", TopLevel).Any());
    }

    /// <summary>The recorded file list, or null when there is none or it cannot be read (then the snapshot is judged like another tool's).</summary>
    private static FileList? ReadFileList(string repoFolder, string commit)
    {
        var path = FileListPath(repoFolder, commit);
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<FileList>(File.ReadAllText(path), GonkaJson.Options) is { Commit: var c } list && c == commit ? list : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string FileListPath(string repoFolder, string commit) => Path.Combine(repoFolder, WorkerFolder, $"files-{commit}.json");

    private static IEnumerable<string> LinkedBlobs(string snapshot) =>
        Directory.EnumerateFiles(snapshot, "*", Everything).Select(f => Path.GetFileName(new FileInfo(f).LinkTarget)).OfType<string>();

    private static IEnumerable<string> RefsTo(string repoFolder, string commit)
    {
        var refs = Path.Combine(repoFolder, "refs");
        return Directory.Exists(refs)
            ? Directory.EnumerateFiles(refs, "*", Everything).Where(r => File.ReadAllText(r).Trim() == commit).ToList()
            : [];
    }

    /// <summary>
    /// Readers never see half a ref or file list: the text goes to a temporary file in the repository's <c>.mlnode</c>
    /// folder (where a crash leaves nothing huggingface_hub would read as a ref) and is then renamed over the old one.
    /// </summary>
    private static void WriteAtomically(string repoFolder, string path, string text)
    {
        var temporary = Path.Combine(repoFolder, WorkerFolder, $"{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(Path.GetDirectoryName(temporary)!);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(temporary, text);
        File.Move(temporary, path, overwrite: true);
    }

    private static string? RepoIdOf(string folderName) =>
        folderName.Split("--") is [_, var owner, var name] && HubRepoId.IsValid($"{owner}/{name}") ? $"{owner}/{name}" : null;

    private static string NearestExistingFolder(string path)
    {
        var folder = new DirectoryInfo(path);
        while (!folder.Exists && folder.Parent is not null) folder = folder.Parent;
        return folder.FullName;
    }

    private static double Gib(long bytes) => Math.Round(bytes / (double)(1L << 30), 2);

    private sealed record FileList(string Commit, IReadOnlyList<string> Files);
}

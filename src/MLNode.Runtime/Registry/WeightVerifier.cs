using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;

namespace MLNode.Runtime.Registry;

/// <summary>A model folder whose files do not match the hashes they must have; nothing of it is loaded.</summary>
public sealed class WeightVerificationException(string message) : Exception(message);

/// <summary>
/// Checks that every file of a model has its expected SHA-256 before a byte of it is loaded. Hashes of
/// files already verified (same path, size and modification time) are remembered for the life of the
/// process, so a reload after <c>inference/down</c> does not re-read hundreds of gigabytes.
/// </summary>
public sealed class WeightVerifier(ILogger<WeightVerifier> logger)
{
    private readonly ConcurrentDictionary<(string Path, long Size, DateTime Modified), string> _verified = new();

    public async Task VerifyAsync(string folder, IReadOnlyList<ModelFile> files, CancellationToken ct)
    {
        var problems = new ConcurrentBag<string>();
        var paths = files.Select(f => (File: f, Full: ModelPaths.Resolve(folder, f.Path))).ToList();
        foreach (var (file, full) in paths)
            if (ModelPaths.ExistingFile(full) is null) problems.Add($"{file.Path}: missing");
        if (!problems.IsEmpty) throw Failure(folder, problems);

        var total = paths.Sum(p => ModelPaths.ExistingFile(p.Full)!.Length);
        var meter = new ProgressMeter();
        meter.Plan(total);
        using var progress = new Timer(_ => meter.Log(logger, "Verifying weights"), null, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5));

        await Parallel.ForEachAsync(paths, new ParallelOptions { MaxDegreeOfParallelism = Math.Min(8, Environment.ProcessorCount), CancellationToken = ct },
            async (p, token) =>
            {
                var actual = await HashAsync(p.Full, meter.Add, token);
                if (!string.Equals(actual, p.File.Sha256, StringComparison.OrdinalIgnoreCase))
                    problems.Add($"{p.File.Path}: SHA-256 is {actual}, expected {p.File.Sha256}");
            });
        if (!problems.IsEmpty) throw Failure(folder, problems);
        logger.LogInformation("Verified {Count} files ({Gb:F2} GB) of {Folder} in {Seconds:F1} s", paths.Count, total / 1e9, folder, meter.Elapsed.TotalSeconds);
    }

    /// <summary>SHA-256 of a file as lower-case hex; cached by (path, size, mtime) of the file a symbolic link leads to.</summary>
    public async Task<string> HashAsync(string path, Action<long>? onBytes, CancellationToken ct)
    {
        var info = ModelPaths.ExistingFile(path) ?? throw new FileNotFoundException($"{path} does not exist or is a link to a missing file", path);
        var key = (info.FullName, info.Length, info.LastWriteTimeUtc);
        if (_verified.TryGetValue(key, out var cached))
        {
            onBytes?.Invoke(info.Length);
            return cached;
        }
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[4 << 20];
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan | FileOptions.Asynchronous);
        int n;
        while ((n = await stream.ReadAsync(buffer, ct)) > 0)
        {
            sha.AppendData(buffer, 0, n);
            onBytes?.Invoke(n);
        }
        var hex = Convert.ToHexStringLower(sha.GetHashAndReset());
        _verified[key] = hex;
        return hex;
    }

    private static WeightVerificationException Failure(string folder, IEnumerable<string> problems) =>
        new($"weights in {folder} failed verification; nothing was loaded: " + string.Join("; ", problems.Order()));
}

using System.Collections.Concurrent;
using System.Diagnostics;
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
            if (!File.Exists(full)) problems.Add($"{file.Path}: missing");
        if (!problems.IsEmpty) throw Failure(folder, problems);

        var total = paths.Sum(p => new FileInfo(p.Full).Length);
        long done = 0;
        var watch = Stopwatch.StartNew();
        using var progress = new Timer(_ => LogProgress(Interlocked.Read(ref done), total, watch.Elapsed), null, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5));

        await Parallel.ForEachAsync(paths, new ParallelOptions { MaxDegreeOfParallelism = Math.Min(8, Environment.ProcessorCount), CancellationToken = ct },
            async (p, token) =>
            {
                var actual = await HashAsync(p.Full, n => Interlocked.Add(ref done, n), token);
                if (!string.Equals(actual, p.File.Sha256, StringComparison.OrdinalIgnoreCase))
                    problems.Add($"{p.File.Path}: SHA-256 is {actual}, expected {p.File.Sha256}");
            });
        if (!problems.IsEmpty) throw Failure(folder, problems);
        logger.LogInformation("Verified {Count} files ({Gb:F2} GB) of {Folder} in {Seconds:F1} s", paths.Count, total / 1e9, folder, watch.Elapsed.TotalSeconds);
    }

    /// <summary>SHA-256 of a file as lower-case hex; cached by (path, size, mtime).</summary>
    public async Task<string> HashAsync(string path, Action<long>? onBytes, CancellationToken ct)
    {
        var info = new FileInfo(path);
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

    private void LogProgress(long done, long total, TimeSpan elapsed)
    {
        var rate = done / Math.Max(elapsed.TotalSeconds, 1e-3);
        var eta = rate > 0 ? TimeSpan.FromSeconds((total - done) / rate) : TimeSpan.Zero;
        logger.LogInformation("Verifying weights: {Done:F2}/{Total:F2} GB ({Rate:F0} MB/s, ETA {Eta:mm\\:ss})", done / 1e9, total / 1e9, rate / 1e6, eta);
    }

    private static WeightVerificationException Failure(string folder, IEnumerable<string> problems) =>
        new($"weights in {folder} failed verification; nothing was loaded: " + string.Join("; ", problems.Order()));
}

using System.Runtime.InteropServices;
using MLNode.Runtime.Native;

namespace MLNode.Runtime.Collectives;

/// <summary>
/// Finds and loads <c>libnccl.so.2</c> for <see cref="NcclCommunicator"/>: the file or folder named by
/// <c>MLNODE_NCCL</c> when set (and nothing else then: a configured path that does not work is an error, not a reason
/// to pick another NCCL); otherwise the NCCL that pip's torch ships beside the CUDA libtorch
/// (<c>site-packages/nvidia/nccl/lib</c>, i.e. <c>../../nvidia/nccl/lib</c> from <c>torch/lib</c>), then
/// <c>torch/lib</c> itself, then the system's library search path. The first successful load serves the process.
/// </summary>
public static class NcclLibrary
{
    public const string FileName = "libnccl.so.2";
    public const string PathVariable = "MLNODE_NCCL";

    /// <summary>The name the bindings import; resolved to the loaded library.</summary>
    internal const string ImportName = "nccl";

    private static readonly Lock Gate = new();
    private static nint _handle;

    static NcclLibrary() => NativeLibraries.Register(ImportName, () => Volatile.Read(ref _handle));

    /// <summary>
    /// Loads NCCL once per process (see the class remarks for where it is looked for) and returns its version, e.g.
    /// 22703 for 2.27.3; throws <see cref="NcclUnavailableException"/> saying what was tried.
    /// </summary>
    public static int Load(string? libtorchFolder)
    {
        lock (Gate)
        {
            if (_handle == 0) _handle = Open(Environment.GetEnvironmentVariable(PathVariable), libtorchFolder);
        }
        Nccl.Check(Nccl.ncclGetVersion(out var version), nameof(Nccl.ncclGetVersion));
        return version;
    }

    /// <summary>
    /// The handle of the first candidate (<see cref="Candidates"/>) that loads and exports NCCL's entry points; a
    /// <see cref="NcclUnavailableException"/> naming every candidate and why it failed otherwise.
    /// </summary>
    public static nint Open(string? configured, string? libtorchFolder)
    {
        var problems = new List<string>();
        foreach (var candidate in Candidates(configured, libtorchFolder))
        {
            var isPath = candidate.Contains('/');
            if (isPath && !File.Exists(candidate))
            {
                problems.Add($"{candidate}: no such file");
                continue;
            }
            if (!NativeLibrary.TryLoad(candidate, out var handle))
            {
                problems.Add(isPath ? $"{candidate}: not a loadable shared library" : $"{candidate}: not on the library search path");
                continue;
            }
            var missing = Nccl.EntryPoints.Where(e => !NativeLibrary.TryGetExport(handle, e, out _)).ToArray();
            if (missing.Length == 0) return handle;
            NativeLibrary.Free(handle);
            problems.Add($"{candidate}: not NCCL (no {string.Join(", ", missing)})");
        }
        var hint = string.IsNullOrWhiteSpace(configured)
            ? $"set {PathVariable} to libnccl.so.2 or its folder, or install the CUDA torch wheel with its nvidia-nccl package"
            : $"{PathVariable} is set; fix it or unset it to search beside libtorch";
        throw new NcclUnavailableException($"NCCL could not be loaded ({hint}): {string.Join("; ", problems)}");
    }

    /// <summary>Where NCCL is looked for, in order (a bare file name means the system's library search path).</summary>
    public static IReadOnlyList<string> Candidates(string? configured, string? libtorchFolder)
    {
        if (!string.IsNullOrWhiteSpace(configured))
            return Directory.Exists(configured) ? [Path.Combine(Path.GetFullPath(configured), FileName)] : [Path.GetFullPath(configured)];
        var candidates = new List<string>();
        if (!string.IsNullOrWhiteSpace(libtorchFolder))
        {
            var torchLib = Path.GetFullPath(libtorchFolder);
            candidates.Add(Path.GetFullPath(Path.Combine(torchLib, "..", "..", "nvidia", "nccl", "lib", FileName)));
            candidates.Add(Path.Combine(torchLib, FileName));
        }
        candidates.Add(FileName);
        return candidates;
    }
}

/// <summary>NCCL is needed (tensor parallelism on GPUs) but no usable library was found.</summary>
public sealed class NcclUnavailableException(string message) : Exception(message);

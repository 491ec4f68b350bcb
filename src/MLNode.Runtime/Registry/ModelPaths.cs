namespace MLNode.Runtime.Registry;

/// <summary>Keeps every file name a registry, an index or a request gives inside its model folder.</summary>
public static class ModelPaths
{
    public static bool IsSafeRelative(string relative)
    {
        if (string.IsNullOrEmpty(relative) || relative.Length > 1024) return false;
        if (Path.IsPathRooted(relative) || relative.Contains('\\') || relative.Contains('\0')) return false;
        return relative.Split('/').All(part => part.Length > 0 && part != "." && part != "..");
    }

    /// <summary>The absolute path of <paramref name="relative"/> inside <paramref name="folder"/>, or an exception naming it.</summary>
    public static string Resolve(string folder, string relative)
    {
        if (!IsSafeRelative(relative))
            throw new InvalidDataException($"'{relative}' is not a relative path inside the model folder {folder}");
        var root = Path.GetFullPath(folder);
        var full = Path.GetFullPath(Path.Combine(root, relative));
        if (!full.StartsWith(root.TrimEnd('/') + "/", StringComparison.Ordinal))
            throw new InvalidDataException($"'{relative}' escapes the model folder {folder}");
        return full;
    }

    /// <summary>
    /// The file <paramref name="path"/> names once symbolic links are followed, or null when it or a link's
    /// target is missing. Hub snapshots are links into <c>blobs/</c>: the link's own size and time say nothing
    /// about the weights, and <see cref="File.Exists"/> is true for a link whose blob is gone.
    /// </summary>
    public static FileInfo? ExistingFile(string path)
    {
        var info = new FileInfo(path);
        try
        {
            if (info.LinkTarget is not null)
                info = (FileInfo?)info.ResolveLinkTarget(returnFinalTarget: true);
        }
        catch (IOException)
        {
            return null; // a loop of links names no file
        }
        return info is { Exists: true } ? info : null;
    }
}

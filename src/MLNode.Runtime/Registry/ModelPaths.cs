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
}

namespace MLNode.Tests;

/// <summary>
/// Locates the reference fixtures: <c>MLNODE_FIXTURES</c> when set (a published test bundle on the GPU machine
/// has no repository around it), else ../shared/fixtures beside the repository root.
/// </summary>
public static class Fixtures
{
    public static string Root { get; } = FindRoot();

    /// <summary>Absolute path of a fixture; fails naming the path when it is missing.</summary>
    public static string Path(params string[] parts)
    {
        var path = System.IO.Path.Combine([Root, .. parts]);
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new FileNotFoundException($"fixture not found: {path}", path);
        return path;
    }

    private static string FindRoot()
    {
        var configured = Environment.GetEnvironmentVariable("MLNODE_FIXTURES");
        if (!string.IsNullOrWhiteSpace(configured))
            return System.IO.Path.GetFullPath(configured);
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "MLNode.sln")))
                return System.IO.Path.GetFullPath(System.IO.Path.Combine(dir.FullName, "..", "shared", "fixtures"));
        }
        throw new DirectoryNotFoundException($"MLNode.sln not found above {AppContext.BaseDirectory}; fixtures live in ../shared/fixtures of the repository root");
    }
}

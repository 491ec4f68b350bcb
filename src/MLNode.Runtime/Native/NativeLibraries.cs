using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.InteropServices;

namespace MLNode.Runtime.Native;

/// <summary>
/// Where this assembly's <c>LibraryImport</c>s find their libraries. .NET allows one import resolver per assembly, so the
/// bindings (the kernels, NCCL) each register a function that answers for their own library name; any other name falls
/// back to the default search.
/// </summary>
internal static class NativeLibraries
{
    private static readonly ConcurrentDictionary<string, Func<nint>> Resolvers = new(StringComparer.Ordinal);

    static NativeLibraries() => NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);

    /// <summary><paramref name="resolve"/> answers the handle of <paramref name="name"/>, or 0 for the default search.</summary>
    public static void Register(string name, Func<nint> resolve) => Resolvers[name] = resolve;

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath) =>
        Resolvers.TryGetValue(name, out var resolve) ? resolve() : 0;
}

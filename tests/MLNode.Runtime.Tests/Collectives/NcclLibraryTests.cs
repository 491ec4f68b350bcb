using MLNode.Runtime.Collectives;

namespace MLNode.Runtime.Tests.Collectives;

/// <summary>The NCCL binding's failure paths, which need no GPU: a missing or wrong library is a clear error, never a crash.</summary>
public sealed class NcclLibraryTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("mlnode-nccl-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void A_configured_path_without_the_library_is_refused_naming_the_variable_and_the_path()
    {
        var missing = Path.Combine(_folder, "libnccl.so.2");
        var error = Assert.Throws<NcclUnavailableException>(() => NcclLibrary.Open(missing, "/opt/torch/lib"));
        Assert.Contains(NcclLibrary.PathVariable, error.Message);
        Assert.Contains($"{missing}: no such file", error.Message);
        // A configured NCCL is the only candidate: no silent fallback to another copy.
        Assert.DoesNotContain("/opt/torch", error.Message);
    }

    [Fact]
    public void A_file_that_is_not_a_library_or_not_nccl_is_refused()
    {
        var text = Path.Combine(_folder, "libnccl.so.2");
        File.WriteAllText(text, "not an ELF file");
        Assert.Contains("not a loadable shared library", Assert.Throws<NcclUnavailableException>(() => NcclLibrary.Open(_folder, null)).Message);

        var libc = new[] { "/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib64/libc.so.6", "/usr/lib64/libc.so.6" }.FirstOrDefault(File.Exists);
        Assert.SkipWhen(libc is null, "no libc.so.6 at a known path");
        var error = Assert.Throws<NcclUnavailableException>(() => NcclLibrary.Open(libc, null));
        Assert.Contains("not NCCL (no ncclGetVersion", error.Message);
    }

    [Fact]
    public void Without_configuration_nccl_is_looked_for_beside_the_torch_wheel_then_on_the_search_path()
    {
        var candidates = NcclLibrary.Candidates(null, "/venv/lib/python3.12/site-packages/torch/lib");
        Assert.Equal(
            ["/venv/lib/python3.12/site-packages/nvidia/nccl/lib/libnccl.so.2", "/venv/lib/python3.12/site-packages/torch/lib/libnccl.so.2", "libnccl.so.2"],
            candidates);
        Assert.Equal([Path.Combine(_folder, "libnccl.so.2")], NcclLibrary.Candidates(_folder, "/ignored"));
    }
}

using System.Security.Cryptography;
using System.Text;

namespace MLNode.Runtime.Hub;

/// <summary>
/// The hash a hub file's blob name promises: the SHA-256 of the content for an LFS file, the git blob id
/// (SHA-1 of <c>"blob {size}\0"</c> followed by the content) for a file stored in git itself.
/// </summary>
internal sealed class BlobHasher : IDisposable
{
    private readonly HubFile _file;
    private readonly IncrementalHash _hash;

    public BlobHasher(HubFile file)
    {
        _file = file;
        _hash = IncrementalHash.CreateHash(file.Sha256 is null ? HashAlgorithmName.SHA1 : HashAlgorithmName.SHA256);
        Begin();
    }

    public string Algorithm => _file.Sha256 is null ? "git blob id" : "SHA-256";

    /// <summary>Forgets everything appended, for a server that answered a range request with the whole file.</summary>
    public void Restart()
    {
        _hash.GetHashAndReset();
        Begin();
    }

    public void Append(ReadOnlySpan<byte> data) => _hash.AppendData(data);

    /// <summary>Appends a stream from its start to its end (the bytes an earlier attempt left), leaving it positioned at the end.</summary>
    public async Task AppendAsync(Stream stream, byte[] buffer, CancellationToken ct)
    {
        stream.Position = 0;
        int n;
        while ((n = await stream.ReadAsync(buffer, ct)) > 0)
            _hash.AppendData(buffer, 0, n);
    }

    /// <summary>The lower-case hex digest when it differs from the blob name, null when it matches.</summary>
    public string? Mismatch()
    {
        var actual = Convert.ToHexStringLower(_hash.GetHashAndReset());
        return actual == _file.BlobName ? null : actual;
    }

    public void Dispose() => _hash.Dispose();

    private void Begin()
    {
        if (_file.Sha256 is null)
            _hash.AppendData(Encoding.ASCII.GetBytes($"blob {_file.Size}\0"));
    }
}

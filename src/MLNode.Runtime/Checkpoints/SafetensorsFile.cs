using System.IO.MemoryMappedFiles;
using TorchSharp;

namespace MLNode.Runtime.Checkpoints;

/// <summary>
/// A safetensors file mapped read-only into memory. The header is validated on open; tensor bytes
/// are read straight from the mapping, so opening a multi-gigabyte shard costs no copy. Spans handed
/// out are valid until <see cref="Dispose"/>; tensors made by <see cref="Load"/> own copies and outlive it.
/// Reads may run on many threads at once; dispose only once none is left, as a span read after the
/// mapping is gone faults the process.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly MemoryMappedFile _mapping;
    private readonly MemoryMappedViewAccessor _view;
    private readonly Dictionary<string, TensorInfo> _byName;
    private byte* _base;

    private SafetensorsFile(string path, MemoryMappedFile mapping, MemoryMappedViewAccessor view, long length)
    {
        Path = path;
        _mapping = mapping;
        _view = view;
        byte* pointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        _base = pointer + view.PointerOffset;
        try
        {
            var headerLength = SafetensorsHeader.ReadLength(new ReadOnlySpan<byte>(_base, sizeof(ulong)), length, path);
            var header = SafetensorsHeader.Parse(new ReadOnlySpan<byte>(_base + sizeof(ulong), (int)headerLength), length - sizeof(ulong) - headerLength, path);
            Metadata = header.Metadata;
            Tensors = header.Tensors;
            _byName = header.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Path { get; }

    /// <summary>The header's <c>__metadata__</c> (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>All tensors, in file order.</summary>
    public IReadOnlyList<TensorInfo> Tensors { get; }

    /// <summary>Maps and validates a file; throws <see cref="SafetensorsFormatException"/> naming the file and tensor at fault.</summary>
    public static SafetensorsFile Open(string path)
    {
        path = System.IO.Path.GetFullPath(path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var length = stream.Length;
        if (length < sizeof(ulong))
        {
            // Checked before mapping: an empty file cannot be mapped at all.
            stream.Dispose();
            throw new SafetensorsFormatException(path, null, $"file is {length} bytes, shorter than the 8-byte header length");
        }
        var mapping = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        MemoryMappedViewAccessor view;
        try
        {
            view = mapping.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        }
        catch
        {
            mapping.Dispose();
            throw;
        }
        return new SafetensorsFile(path, mapping, view, length);
    }

    public bool Contains(string name) => _byName.ContainsKey(name);

    public TensorInfo GetInfo(string name) =>
        _byName.TryGetValue(name, out var info) ? info : throw new KeyNotFoundException($"{Path}: no tensor named '{name}'");

    /// <summary>The tensor's raw little-endian bytes, straight from the mapping (tensors up to 2 GiB; larger ones by window).</summary>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var info = GetInfo(name);
        if (info.ByteLength > int.MaxValue)
            throw new NotSupportedException($"{Path}: tensor '{name}' is {info.ByteLength} bytes, more than one span holds; read it by window");
        return GetBytes(name, 0, (int)info.ByteLength);
    }

    /// <summary>A window of <paramref name="length"/> bytes starting <paramref name="start"/> bytes into the tensor.</summary>
    public ReadOnlySpan<byte> GetBytes(string name, long start, int length)
    {
        ObjectDisposedException.ThrowIf(_base is null, this);
        var info = GetInfo(name);
        if (start < 0 || length < 0 || start + length > info.ByteLength)
            throw new ArgumentOutOfRangeException(nameof(start), $"window [{start},{start + length}) lies outside tensor '{name}' of {info.ByteLength} bytes");
        return new ReadOnlySpan<byte>(_base + info.FileOffset + start, length);
    }

    /// <summary>
    /// Copies the tensor into a new TorchSharp tensor on <paramref name="device"/> (CPU by default), converted to
    /// <paramref name="dtype"/> when given; only <paramref name="slice"/> of it when given (the rest is not read).
    /// FP8 tensors come back as Byte tensors of their raw bits.
    /// </summary>
    public torch.Tensor Load(string name, torch.Device? device = null, torch.ScalarType? dtype = null, TensorSlice? slice = null) =>
        TorchTensorLoader.Load(this, GetInfo(name), device, dtype, slice);

    public void Dispose()
    {
        if (_base is not null)
        {
            _base = null;
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
        _view.Dispose();
        _mapping.Dispose();
    }
}

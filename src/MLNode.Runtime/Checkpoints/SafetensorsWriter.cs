using System.Buffers.Binary;
using System.Text;
using TorchSharp;

namespace MLNode.Runtime.Checkpoints;

/// <summary>
/// Writes safetensors files byte for byte as the reference library (huggingface/safetensors) does, so
/// the same tensors always give the same file and the same SHA-256: tensors ordered by descending dtype
/// alignment then by name (UTF-8 bytes), compact JSON with <c>__metadata__</c> first, header padded with
/// spaces to a multiple of 8. Metadata keys are sorted, where the reference's hash map has no fixed order.
/// </summary>
public static class SafetensorsWriter
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static void Write(string path, IEnumerable<SafetensorsEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        WriteFile(path, Prepare(tensors.Select(FromEntry), metadata));

    public static void Write(Stream stream, IEnumerable<SafetensorsEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        Prepare(tensors.Select(FromEntry), metadata).WriteTo(stream);

    /// <summary>Writes TorchSharp tensors (any device, any layout); Byte tensors are written as U8.</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        WriteFile(path, Prepare(tensors.Select(pair => FromTensor(pair.Key, pair.Value)), metadata));

    /// <summary>A tensor whose data is produced only when it is its turn to be written.</summary>
    private sealed record PendingTensor(string Name, byte[] Utf8Name, SafetensorsDType DType, long[] Shape, long ByteLength, Action<Stream> WriteData);

    /// <summary>A validated file: its header and its tensors in file order.</summary>
    private sealed record PreparedFile(byte[] Header, IReadOnlyList<PendingTensor> Tensors)
    {
        public void WriteTo(Stream stream)
        {
            Span<byte> length = stackalloc byte[sizeof(ulong)];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)Header.Length);
            stream.Write(length);
            stream.Write(Header);
            foreach (var tensor in Tensors)
                tensor.WriteData(stream);
        }
    }

    /// <summary>Writes beside the target and renames, so a failure never leaves a truncated file under the final name.</summary>
    private static void WriteFile(string path, PreparedFile file)
    {
        var partial = path + ".partial";
        try
        {
            using (var stream = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None))
                file.WriteTo(stream);
            File.Move(partial, path, overwrite: true);
        }
        finally
        {
            File.Delete(partial);
        }
    }

    private static PendingTensor FromEntry(SafetensorsEntry entry)
    {
        var expected = ByteLength(entry.Name, entry.Shape, entry.DType);
        if (entry.Data.Length != expected)
            throw new ArgumentException($"tensor '{entry.Name}': shape [{string.Join(',', entry.Shape)}] of {entry.DType.FormatName()} needs {expected} bytes, got {entry.Data.Length}");
        return new PendingTensor(entry.Name, Utf8(entry.Name, "tensor name"), entry.DType, entry.Shape, expected, stream => stream.Write(entry.Data.Span));
    }

    private static PendingTensor FromTensor(string name, torch.Tensor tensor)
    {
        var dtype = SafetensorsTorchTypes.FromScalarType(tensor.dtype);
        var shape = tensor.shape;
        return new PendingTensor(name, Utf8(name, "tensor name"), dtype, shape, ByteLength(name, shape, dtype), stream =>
        {
            using var onCpu = tensor.cpu();
            using var contiguous = onCpu.contiguous();
            TensorByteChunks.ForEach(contiguous, (chunk, _) => stream.Write(chunk));
        });
    }

    private static PreparedFile Prepare(IEnumerable<PendingTensor> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var ordered = tensors.ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var tensor in ordered)
        {
            if (!names.Add(tensor.Name))
                throw new ArgumentException($"tensor '{tensor.Name}' appears twice");
        }
        foreach (var (key, value) in metadata ?? new Dictionary<string, string>())
        {
            Utf8(key, "metadata key");
            Utf8(value, "metadata value");
        }
        // The reference order: larger (more aligned) dtypes first, then names by UTF-8 bytes.
        ordered.Sort((a, b) => a.DType != b.DType ? b.DType.CompareTo(a.DType) : Utf8Order.Instance.Compare(a.Utf8Name, b.Utf8Name));
        return new PreparedFile(Header(ordered, metadata), ordered);
    }

    private static byte[] Header(IReadOnlyList<PendingTensor> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var json = new StringBuilder("{");
        if (metadata is not null)
        {
            json.Append("\"__metadata__\":{");
            json.AppendJoin(',', metadata.OrderBy(entry => StrictUtf8.GetBytes(entry.Key), Utf8Order.Instance)
                .Select(entry => $"{JsonString(entry.Key)}:{JsonString(entry.Value)}"));
            json.Append('}');
            if (tensors.Count > 0)
                json.Append(',');
        }
        var offset = 0L;
        json.AppendJoin(',', tensors.Select(tensor =>
        {
            var entry = $"{JsonString(tensor.Name)}:{{\"dtype\":\"{tensor.DType.FormatName()}\",\"shape\":[{string.Join(',', tensor.Shape)}],\"data_offsets\":[{offset},{offset + tensor.ByteLength}]}}";
            offset += tensor.ByteLength;
            return entry;
        }));
        json.Append('}');
        var header = StrictUtf8.GetBytes(json.ToString());
        var padding = (8 - header.Length % 8) % 8;
        return [.. header, .. Enumerable.Repeat((byte)' ', padding)];
    }

    /// <summary>A JSON string literal escaped as serde_json writes it: only quote, backslash and control characters.</summary>
    private static string JsonString(string value)
    {
        var json = new StringBuilder(value.Length + 2).Append('"');
        foreach (var c in value)
        {
            json.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\b' => "\\b",
                '\f' => "\\f",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                < ' ' => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        }
        return json.Append('"').ToString();
    }

    private static long ByteLength(string name, long[] shape, SafetensorsDType dtype)
    {
        if (name == SafetensorsHeader.MetadataKey)
            throw new ArgumentException($"'{SafetensorsHeader.MetadataKey}' is reserved and cannot name a tensor");
        if (shape.Any(dim => dim < 0))
            throw new ArgumentException($"tensor '{name}': negative dimension in shape [{string.Join(',', shape)}]");
        return dtype.ByteCount(shape) ?? throw new ArgumentException($"tensor '{name}': shape [{string.Join(',', shape)}] overflows a 64-bit byte count");
    }

    private static byte[] Utf8(string text, string what)
    {
        try
        {
            return StrictUtf8.GetBytes(text);
        }
        catch (EncoderFallbackException)
        {
            throw new ArgumentException($"{what} '{text}' is not valid Unicode (lone surrogate) and has no UTF-8 form");
        }
    }

    private sealed class Utf8Order : IComparer<byte[]>
    {
        public static readonly Utf8Order Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}

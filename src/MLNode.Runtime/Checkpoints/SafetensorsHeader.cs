using System.Text.Json;

namespace MLNode.Runtime.Checkpoints;

/// <summary>
/// The parsed and validated JSON header of a safetensors file. Validation follows the reference
/// library: every tensor's byte range matches its shape and dtype, and the ranges tile the data
/// section exactly (no gap, no overlap, nothing past the end, nothing left over).
/// </summary>
internal sealed class SafetensorsHeader
{
    /// <summary>The reference library refuses larger headers; so do we, before allocating for one.</summary>
    public const long MaxHeaderLength = 100_000_000;

    public const string MetadataKey = "__metadata__";

    private SafetensorsHeader(IReadOnlyDictionary<string, string> metadata, IReadOnlyList<TensorInfo> tensors)
    {
        Metadata = metadata;
        Tensors = tensors;
    }

    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensors in file order (by offset).</summary>
    public IReadOnlyList<TensorInfo> Tensors { get; }

    /// <summary>Reads the 8-byte little-endian header length and checks it against the file size.</summary>
    public static long ReadLength(ReadOnlySpan<byte> lengthBytes, long fileLength, string path)
    {
        var length = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (length > MaxHeaderLength)
            throw new SafetensorsFormatException(path, null, $"header length {length} exceeds the limit of {MaxHeaderLength} bytes");
        if ((long)length > fileLength - sizeof(ulong))
            throw new SafetensorsFormatException(path, null, $"header length {length} runs past the end of the {fileLength}-byte file (truncated?)");
        return (long)length;
    }

    /// <param name="json">The header bytes (after the 8-byte length).</param>
    /// <param name="dataLength">Bytes in the file after the header: the tensors must tile exactly this range.</param>
    public static SafetensorsHeader Parse(ReadOnlySpan<byte> json, long dataLength, string path)
    {
        if (json.IsEmpty || json[0] != (byte)'{')
            throw new SafetensorsFormatException(path, null, "header does not start with '{'");

        using var document = ParseJson(json, path);
        IReadOnlyDictionary<string, string> metadata = new Dictionary<string, string>();
        var tensors = new List<TensorInfo>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in document.RootElement.EnumerateObject())
        {
            if (!names.Add(property.Name))
                throw new SafetensorsFormatException(path, property.Name, "appears twice in the header");
            if (property.Name == MetadataKey)
                metadata = ParseMetadata(property.Value, path);
            else
                tensors.Add(ParseTensor(property.Name, property.Value, sizeof(ulong) + json.Length, dataLength, path));
        }

        tensors.Sort((a, b) => a.FileOffset != b.FileOffset ? a.FileOffset.CompareTo(b.FileOffset) : a.ByteLength.CompareTo(b.ByteLength));
        CheckTiling(tensors, sizeof(ulong) + json.Length, dataLength, path);
        return new SafetensorsHeader(metadata, tensors);
    }

    private static JsonDocument ParseJson(ReadOnlySpan<byte> json, string path)
    {
        try
        {
            return JsonDocument.Parse(json.ToArray());
        }
        catch (JsonException e)
        {
            throw new SafetensorsFormatException(path, null, $"header is not valid JSON: {e.Message}");
        }
    }

    private static Dictionary<string, string> ParseMetadata(JsonElement element, string path)
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw new SafetensorsFormatException(path, null, $"{MetadataKey} must be an object of strings, got {element.ValueKind}");
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in element.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new SafetensorsFormatException(path, null, $"{MetadataKey} entry '{entry.Name}' must be a string, got {entry.Value.ValueKind}");
            if (!metadata.TryAdd(entry.Name, entry.Value.GetString()!))
                throw new SafetensorsFormatException(path, null, $"{MetadataKey} entry '{entry.Name}' appears twice");
        }
        return metadata;
    }

    private static TensorInfo ParseTensor(string name, JsonElement entry, long dataStart, long dataLength, string path)
    {
        if (entry.ValueKind != JsonValueKind.Object)
            throw new SafetensorsFormatException(path, name, $"entry must be an object, got {entry.ValueKind}");

        if (!entry.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new SafetensorsFormatException(path, name, "missing string field 'dtype'");
        var dtypeName = dtypeElement.GetString()!;
        if (!SafetensorsDTypes.TryParse(dtypeName, out var dtype))
            throw new SafetensorsFormatException(path, name, $"unknown dtype '{dtypeName}'");

        var shape = ReadNonNegativeIntegers(entry, "shape", path, name);
        var offsets = ReadNonNegativeIntegers(entry, "data_offsets", path, name);
        if (offsets.Length != 2)
            throw new SafetensorsFormatException(path, name, $"data_offsets must hold 2 numbers, got {offsets.Length}");
        var (begin, end) = (offsets[0], offsets[1]);
        if (end < begin)
            throw new SafetensorsFormatException(path, name, $"data_offsets [{begin},{end}] end before they begin");
        if (end > dataLength)
            throw new SafetensorsFormatException(path, name,
                $"data_offsets [{begin},{end}] run past the end of the {dataLength}-byte data section (truncated file?)");

        var expectedBytes = dtype.ByteCount(shape)
            ?? throw new SafetensorsFormatException(path, name, $"shape [{string.Join(',', shape)}] overflows a 64-bit byte count");
        if (end - begin != expectedBytes)
            throw new SafetensorsFormatException(path, name,
                $"shape [{string.Join(',', shape)}] of {dtypeName} needs {expectedBytes} bytes but data_offsets [{begin},{end}] span {end - begin}");

        return new TensorInfo(name, dtype, shape, dataStart + begin, end - begin);
    }

    private static long[] ReadNonNegativeIntegers(JsonElement entry, string field, string path, string name)
    {
        if (!entry.TryGetProperty(field, out var array) || array.ValueKind != JsonValueKind.Array)
            throw new SafetensorsFormatException(path, name, $"missing array field '{field}'");
        var values = new long[array.GetArrayLength()];
        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out var value) || value < 0)
                throw new SafetensorsFormatException(path, name, $"'{field}' must hold non-negative integers, got {item.GetRawText()}");
            values[i++] = value;
        }
        return values;
    }

    /// <param name="tensors">Sorted by offset, each already within the data section.</param>
    private static void CheckTiling(List<TensorInfo> tensors, long dataStart, long dataLength, string path)
    {
        var expected = 0L;
        TensorInfo? previous = null;
        foreach (var tensor in tensors)
        {
            var begin = tensor.FileOffset - dataStart;
            if (begin < expected)
                throw new SafetensorsFormatException(path, tensor.Name, $"data at offset {begin} overlaps tensor '{previous!.Name}'");
            if (begin > expected)
                throw new SafetensorsFormatException(path, tensor.Name, $"data starts at offset {begin}, leaving a gap after offset {expected}");
            expected += tensor.ByteLength;
            previous = tensor;
        }
        if (expected != dataLength)
            throw new SafetensorsFormatException(path, null, $"{dataLength - expected} bytes after the last tensor belong to none");
    }
}

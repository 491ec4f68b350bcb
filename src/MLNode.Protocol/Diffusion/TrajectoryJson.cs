using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace MLNode.Protocol.Diffusion;

/// <summary>
/// Reading and writing the trajectory documents (commitments, reveal manifests) field by field: one byte form on write
/// (fixed field order, no whitespace, nothing escaped that JSON allows raw), and on read a <see cref="FormatException"/>
/// naming the field at fault for anything missing, mistyped or out of range.
/// </summary>
internal static class TrajectoryJson
{
    public static readonly JsonWriterOptions Writer = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = false };

    /// <summary>Parses a document that must be JSON, <paramref name="what"/> naming it in the error.</summary>
    public static JsonDocument Document(ReadOnlySpan<byte> utf8Json, string what)
    {
        try
        {
            return JsonDocument.Parse(utf8Json.ToArray());
        }
        catch (JsonException e)
        {
            throw new FormatException($"{what} is a JSON object: {e.Message}", e);
        }
    }

    /// <summary>Refuses a document whose <c>version</c> is not <paramref name="expected"/>.</summary>
    public static void RequireVersion(JsonElement root, string expected)
    {
        var version = String(root, "version", "");
        if (version != expected) throw Error("", "version", $"'{version}' is not {expected}");
    }

    public static JsonElement Field(JsonElement json, string name, string path)
    {
        if (json.ValueKind != JsonValueKind.Object) throw new FormatException($"{(path.Length == 0 ? "the document" : path)} must be a JSON object");
        return json.TryGetProperty(name, out var value) ? value : throw Error(path, name, "is missing");
    }

    public static int Int(JsonElement json, string name, string path) =>
        Field(json, name, path) is { ValueKind: JsonValueKind.Number } value && value.TryGetInt32(out var number) && number >= 0
            ? number
            : throw Error(path, name, "must be a non-negative integer");

    public static ulong UInt64(JsonElement json, string name, string path) =>
        Field(json, name, path) is { ValueKind: JsonValueKind.Number } value && value.TryGetUInt64(out var number)
            ? number
            : throw Error(path, name, "must be an integer in 0..2^64−1");

    public static double Double(JsonElement json, string name, string path) =>
        Field(json, name, path) is { ValueKind: JsonValueKind.Number } value && value.TryGetDouble(out var number) && double.IsFinite(number)
            ? number
            : throw Error(path, name, "must be a finite number");

    public static string String(JsonElement json, string name, string path) =>
        Field(json, name, path) is { ValueKind: JsonValueKind.String } value ? value.GetString()! : throw Error(path, name, "must be a string");

    public static JsonElement Array(JsonElement json, string name, string path) =>
        Field(json, name, path) is { ValueKind: JsonValueKind.Array } value ? value : throw Error(path, name, "must be an array");

    /// <summary>A SHA-256 as 64 lowercase hex digits.</summary>
    public static byte[] Hash(JsonElement json, string name, string path) => Hash(String(json, name, path), path, name);

    public static byte[] Hash(string hex, string path, string name) =>
        hex.Length == 2 * MerkleTree.HashBytes && hex.All(char.IsAsciiHexDigitLower)
            ? Convert.FromHexString(hex)
            : throw Error(path, name, $"must be a SHA-256 as {2 * MerkleTree.HashBytes} lowercase hex digits");

    /// <summary>A sketch: base64 of <see cref="TrajectoryRecord.SketchDimension"/> finite fp16 little-endian values.</summary>
    public static Half[] Sketch(JsonElement json, string name, string path)
    {
        var bytes = new byte[TrajectoryRecord.SketchDimension * 2];
        if (!Convert.TryFromBase64String(String(json, name, path), bytes, out var written) || written != bytes.Length)
            throw Error(path, name, $"must be base64 of {TrajectoryRecord.SketchDimension} fp16 values ({bytes.Length} bytes)");
        var sketch = new Half[TrajectoryRecord.SketchDimension];
        for (var i = 0; i < sketch.Length; i++)
            sketch[i] = BinaryPrimitives.ReadHalfLittleEndian(bytes.AsSpan(2 * i));
        return sketch.All(Half.IsFinite) ? sketch : throw Error(path, name, "holds a value that is not finite");
    }

    public static FormatException Error(string path, string name, string message) =>
        new($"{(path.Length == 0 ? name : $"{path}.{name}")}: {message}");
}

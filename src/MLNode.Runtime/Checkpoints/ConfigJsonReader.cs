using System.Text.Json;

namespace MLNode.Runtime.Checkpoints;

/// <summary>
/// Typed reads of one JSON object of a config file, with errors that name the file and the field's full
/// path (e.g. <c>thinker_config.text_config.hidden_size</c>). A field set to null counts as absent, as
/// transformers writes null for unset options.
/// </summary>
internal sealed class ConfigJsonReader(JsonElement element, string source, string path)
{
    public JsonElement Element => element;

    public static ConfigJsonReader Root(JsonElement root, string source) =>
        root.ValueKind == JsonValueKind.Object ? new ConfigJsonReader(root, source, "") : throw new InvalidDataException($"{source}: the config is not a JSON object");

    public InvalidDataException Error(string field, string problem) => new($"{source}: field '{path}{field}' {problem}");

    public ConfigJsonReader RequiredObject(string field) =>
        OptionalObject(field) ?? throw Error(field, "is missing (expected an object)");

    public ConfigJsonReader? OptionalObject(string field) => Present(field) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Object } value => new ConfigJsonReader(value, source, $"{path}{field}."),
        var value => throw Mismatch(field, "an object", value.Value),
    };

    public int RequiredInt(string field) => OptionalInt(field) ?? throw Error(field, "is missing (expected an integer)");

    public int? OptionalInt(string field) => Present(field) switch
    {
        null => null,
        var value => AsInt(value.Value) ?? throw Mismatch(field, "a 32-bit integer", value.Value),
    };

    public double? OptionalDouble(string field) => Present(field) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Number } value => value.GetDouble(),
        var value => throw Mismatch(field, "a number", value.Value),
    };

    public bool? OptionalBool(string field) => Present(field) switch
    {
        null => null,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        var value => throw Mismatch(field, "a boolean", value.Value),
    };

    public string? OptionalString(string field) => Present(field) switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } value => value.GetString(),
        var value => throw Mismatch(field, "a string", value.Value),
    };

    public IReadOnlyList<int>? OptionalIntArray(string field) => Present(field) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Array } array => array.EnumerateArray()
            .Select(item => AsInt(item) ?? throw Mismatch(field, "an array of integers", array))
            .ToArray(),
        var value => throw Mismatch(field, "an array of integers", value.Value),
    };

    public IReadOnlyList<double>? OptionalDoubleArray(string field) => Present(field) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Array } array => array.EnumerateArray()
            .Select(item => item.ValueKind == JsonValueKind.Number ? item.GetDouble() : throw Mismatch(field, "an array of numbers", array))
            .ToArray(),
        var value => throw Mismatch(field, "an array of numbers", value.Value),
    };

    public IReadOnlyList<bool>? OptionalBoolArray(string field) => Present(field) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Array } array => array.EnumerateArray()
            .Select(item => item.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw Mismatch(field, "an array of booleans", array),
            })
            .ToArray(),
        var value => throw Mismatch(field, "an array of booleans", value.Value),
    };

    public IReadOnlyList<string>? OptionalStringArray(string field) => Present(field) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Array } array => array.EnumerateArray()
            .Select(item => item.ValueKind == JsonValueKind.String ? item.GetString()! : throw Mismatch(field, "an array of strings", array))
            .ToArray(),
        var value => throw Mismatch(field, "an array of strings", value.Value),
    };

    /// <summary>An object whose values are integers, e.g. generation_config's <c>lang_to_id</c>.</summary>
    public IReadOnlyDictionary<string, int>? OptionalIntMap(string field) => Present(field) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Object } map => map.EnumerateObject()
            .ToDictionary(entry => entry.Name, entry => AsInt(entry.Value) ?? throw Mismatch(field, "an object of integers", map), StringComparer.Ordinal),
        var value => throw Mismatch(field, "an object of integers", value.Value),
    };

    private JsonElement? Present(string field) =>
        element.TryGetProperty(field, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    private static int? AsInt(JsonElement value) =>
        value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var number) ? number : null;

    private InvalidDataException Mismatch(string field, string expected, JsonElement value) =>
        Error(field, $"must be {expected}, got {value.GetRawText()}");
}

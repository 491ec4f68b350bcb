using System.Text.Json;
using System.Text.Json.Serialization;

namespace MLNode.Protocol.OpenAi;

/// <summary>
/// OpenAI fields that are either a string or a list (message content, a completion prompt): read either
/// form, and write back the form that was read.
/// </summary>
internal abstract class TextOrListConverter<TValue, TItem>(string field, string listDescription) : JsonConverter<TValue>
{
    protected abstract TValue FromText(string text);
    protected abstract TValue FromList(IReadOnlyList<TItem> items);
    protected abstract string? Text(TValue value);
    protected abstract IReadOnlyList<TItem>? List(TValue value);

    public override TValue Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType switch
        {
            JsonTokenType.String => FromText(reader.GetString()!),
            JsonTokenType.StartArray => FromList(JsonSerializer.Deserialize<List<TItem>>(ref reader, options)!),
            _ => throw new JsonException($"{field} must be a string or {listDescription}"),
        };

    public override void Write(Utf8JsonWriter writer, TValue value, JsonSerializerOptions options)
    {
        if (Text(value) is { } text)
            writer.WriteStringValue(text);
        else
            JsonSerializer.Serialize(writer, List(value), options);
    }
}

using System.Text.Json;
using System.Text.Json.Serialization;

namespace MLNode.Protocol;

/// <summary>
/// The JSON conventions of the reference node (FastAPI/pydantic): snake_case fields, enums as their
/// upper-case names, nulls written out. Requests are read strictly so a wrong type or a missing field
/// is reported with its JSON path instead of silently becoming a default.
/// </summary>
public static class GonkaJson
{
    public static JsonSerializerOptions Options { get; } = Create(strict: false);

    /// <summary>Request bodies: unknown fields and nulls in non-nullable members are errors.</summary>
    public static JsonSerializerOptions StrictOptions { get; } = Create(strict: true);

    /// <summary>
    /// vLLM's <c>exclude_unset</c> outputs (stream chunks) and bodies sent on to another server (validator replays):
    /// a field left out takes pydantic's default there, whereas an explicit null fails a non-optional field.
    /// </summary>
    public static JsonSerializerOptions OmitNullsOptions { get; } = Create(strict: false, omitNulls: true);

    private static JsonSerializerOptions Create(bool strict, bool omitNulls = false)
    {
        var options = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            DefaultIgnoreCondition = omitNulls ? JsonIgnoreCondition.WhenWritingNull : JsonIgnoreCondition.Never,
            RespectNullableAnnotations = true,
            RespectRequiredConstructorParameters = true,
            NumberHandling = JsonNumberHandling.Strict,
            AllowTrailingCommas = false,
            ReadCommentHandling = JsonCommentHandling.Disallow,
            MaxDepth = 32,
        };
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseUpper, allowIntegerValues: false));
        if (strict)
            options.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}

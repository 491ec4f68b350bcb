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

    private static JsonSerializerOptions Create(bool strict)
    {
        var options = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            DefaultIgnoreCondition = JsonIgnoreCondition.Never,
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

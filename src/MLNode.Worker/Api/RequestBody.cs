using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.Features;
using MLNode.Protocol;
using MLNode.Protocol.Management;

namespace MLNode.Worker.Api;

/// <summary>
/// Reads a JSON request body strictly and turns every way it can be wrong into a FastAPI-shaped 4xx:
/// 413 when too large, 422 with <c>{"detail":[{"loc":["body",field…],"msg","type"}]}</c> otherwise, so the
/// caller always learns which field to fix and the handler only ever sees a valid request.
/// </summary>
public static partial class RequestBody
{
    public const long DefaultMaxBytes = 1 << 20;

    public static async Task<(T? Value, IResult? Error)> ReadAsync<T>(HttpRequest request, CancellationToken ct,
        bool rejectUnknownFields = false, long maxBytes = DefaultMaxBytes) where T : class
    {
        if (request.ContentLength > maxBytes)
            return (null, TooLarge(maxBytes));
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            limit.MaxRequestBodySize = maxBytes;

        byte[] bytes;
        try
        {
            using var buffer = new MemoryStream();
            await request.Body.CopyToAsync(buffer, ct);
            if (buffer.Length > maxBytes) return (null, TooLarge(maxBytes));
            bytes = buffer.ToArray();
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (null, TooLarge(maxBytes));
        }
        if (bytes.Length == 0)
            return (null, Invalid(new FieldError("body", "Field required: the request needs a JSON body")));

        T? value;
        try
        {
            value = JsonSerializer.Deserialize<T>(bytes, rejectUnknownFields ? GonkaJson.StrictOptions : GonkaJson.Options);
        }
        catch (JsonException e)
        {
            return (null, Invalid(Describe(e)));
        }
        if (value is null)
            return (null, Invalid(new FieldError("body", "must be a JSON object, got null")));
        if (value is IValidatedRequest validated && validated.Validate().ToList() is { Count: > 0 } errors)
            return (null, Invalid([.. errors]));
        return (value, null);
    }

    public static IResult Invalid(params FieldError[] errors) => Results.Json(
        new { detail = errors.Select(e => new { loc = e.Field.Split('.'), msg = $"{e.Field}: {e.Message}", type = "value_error" }) },
        GonkaJson.Options, statusCode: StatusCodes.Status422UnprocessableEntity);

    public static IResult Detail(int status, string detail) =>
        Results.Json(new ErrorDetail(detail), GonkaJson.Options, statusCode: status);

    private static IResult TooLarge(long maxBytes) =>
        Detail(StatusCodes.Status413PayloadTooLarge, $"body: request body exceeds the limit of {maxBytes} bytes");

    /// <summary>
    /// Maps System.Text.Json's error (a JSON path plus prose) onto the field it is about; <paramref name="root"/> is where
    /// the JSON sits ("body" for a JSON body, "body.windows" for a JSON form field).
    /// </summary>
    internal static FieldError Describe(JsonException e, string root = "body")
    {
        var missing = MissingProperties().Match(e.Message);
        if (missing.Success)
            return new FieldError($"{ToField(e.Path, root)}.{missing.Groups[1].Value}", "Field required");
        var unknown = UnknownProperty().Match(e.Message);
        if (unknown.Success)
            return new FieldError(ToField(e.Path, root) is var p && p.EndsWith(unknown.Groups[1].Value) ? p : $"{p}.{unknown.Groups[1].Value}",
                "Extra inputs are not permitted");
        var field = ToField(e.Path, root);
        if (e.Path is null or "$")
            return new FieldError(root, $"not valid JSON: {FirstSentence(e.Message)}");
        var target = TargetType().Match(e.Message);
        return new FieldError(field, target.Success ? $"wrong type: expected {Friendly(target.Groups[1].Value)}" : $"wrong type or value: {FirstSentence(e.Message)}");
    }

    private static string Friendly(string clrType) => clrType switch
    {
        "System.String" => "a string",
        "System.Int32" or "System.Int64" or "System.UInt32" or "System.UInt64" => "an integer",
        "System.Double" or "System.Single" => "a number",
        "System.Boolean" => "true or false",
        _ when clrType.Contains("List") || clrType.EndsWith("[]") => "an array",
        _ when clrType.StartsWith("System.Nullable") => Friendly(clrType[(clrType.IndexOf("[[", StringComparison.Ordinal) + 2)..].Split(',')[0]),
        _ => "a value of the field's type",
    };

    /// <summary>"$.params.seq_len" → "body.params.seq_len"; "$.nonces[3]" → "body.nonces.3".</summary>
    private static string ToField(string? path, string root) =>
        path is null ? root : root + ArrayIndex().Replace(path.TrimStart('$'), ".$1");

    private static string FirstSentence(string message)
    {
        var cut = message.IndexOf(". Path:", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }

    [GeneratedRegex(@"missing required properties including: '([^']+)'")]
    private static partial Regex MissingProperties();

    [GeneratedRegex(@"The JSON property '([^']+)' could not be mapped")]
    private static partial Regex UnknownProperty();

    [GeneratedRegex(@"could not be converted to ([^.\s][^\s]*?)\.? Path")]
    private static partial Regex TargetType();

    [GeneratedRegex(@"\[(\d+)\]")]
    private static partial Regex ArrayIndex();
}

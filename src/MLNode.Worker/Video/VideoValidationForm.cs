using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.Features;
using MLNode.Engines.Dit.Output;
using MLNode.Protocol.Management;
using MLNode.Protocol.OpenAi;
using MLNode.Worker.Api;

namespace MLNode.Worker.Video;

/// <summary>The validation modes of spec §5.6 (C) that a worker runs.</summary>
public enum VideoValidationMode { V0, V1, V2 }

/// <summary>
/// A <c>POST /v1/videos/validations</c> multipart form, read strictly: <c>mode</c> (v0, v1 or v2), <c>manifest</c>
/// (the executor's video object as JSON text), <c>video</c> (the delivered file) with its <c>format</c> (mp4, frames or
/// png, as /v1/videos names them; mp4 when absent), and for v1 <c>final_latent</c> (safetensors holding "x0") with
/// <c>h_final</c>, the hash the executor committed. Any other field, a field given twice, or a file where a value
/// belongs (or the reverse) is refused by name.
/// </summary>
public sealed partial record VideoValidationForm(
    VideoValidationMode Mode, JsonElement Manifest, IFormFile Video, VideoFormat Format, IFormFile? FinalLatent, string? HFinal)
{
    public const string VideoField = "video";
    public const string FinalLatentField = "final_latent";

    /// <summary>Room for the text fields beside the files: the manifest lists a hash per frame and per weight file.</summary>
    public const long FormFieldBytes = 1 << 20;

    private static readonly string[] Values = ["mode", "manifest", "format", "h_final"];
    private static readonly string[] Files = [VideoField, FinalLatentField];

    /// <summary>
    /// Reads the form within the limits: the whole body within two uploads plus <see cref="FormFieldBytes"/> (413), each
    /// file within <paramref name="maxUploadBytes"/> (413 naming it), every field well formed (422 naming it).
    /// </summary>
    public static async Task<(VideoValidationForm? Form, IResult? Error)> ReadAsync(HttpRequest request, long maxUploadBytes, CancellationToken ct)
    {
        var maxBody = 2 * maxUploadBytes + FormFieldBytes;
        if (request.ContentLength > maxBody) return (null, TooLarge("body", $"the request body is larger than the limit of {maxBody} bytes"));
        if (!request.HasFormContentType || request.ContentType?.StartsWith("multipart/form-data", StringComparison.OrdinalIgnoreCase) != true)
            return (null, RequestBody.Invalid(new FieldError("body", "expected multipart/form-data with mode, manifest and the video file")));
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
            bodyLimit.MaxRequestBodySize = maxBody;
        request.HttpContext.Features.Set<IFormFeature>(new FormFeature(request,
            new FormOptions { MultipartBodyLengthLimit = maxBody, ValueLengthLimit = (int)FormFieldBytes }));

        IFormCollection form;
        try
        {
            form = await request.ReadFormAsync(ct);
        }
        catch (InvalidDataException e) when (e.Message.Contains("limit", StringComparison.OrdinalIgnoreCase))
        {
            return (null, TooLarge("body", $"a part of the form is over its limit: {e.Message}"));
        }
        catch (InvalidDataException e)
        {
            return (null, RequestBody.Invalid(new FieldError("body", $"malformed multipart/form-data: {e.Message}")));
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (null, TooLarge("body", $"the request body is larger than the limit of {maxBody} bytes"));
        }

        var errors = new List<FieldError>();
        foreach (var name in form.Keys.Concat(form.Files.Select(f => f.Name)).Distinct(StringComparer.Ordinal))
        {
            if (Files.Contains(name) && form.ContainsKey(name)) errors.Add(new FieldError(name, "must be an uploaded file, not a text field"));
            else if (Values.Contains(name) && form.Files.Any(f => f.Name == name)) errors.Add(new FieldError(name, "must be a text field, not a file"));
            else if (!Values.Contains(name) && !Files.Contains(name)) errors.Add(new FieldError(name, "unknown field"));
            else if (form.Files.Count(f => f.Name == name) + (form.TryGetValue(name, out var v) ? v.Count : 0) > 1) errors.Add(new FieldError(name, "given more than once"));
        }
        if (errors.Count > 0) return (null, RequestBody.Invalid([.. errors]));

        string? Text(string name) => form.TryGetValue(name, out var value) ? value.ToString() : null;
        var mode = Text("mode") switch
        {
            "v0" => VideoValidationMode.V0,
            "v1" => VideoValidationMode.V1,
            "v2" => VideoValidationMode.V2,
            null => Error<VideoValidationMode>(errors, "mode", "Field required: v0, v1 or v2"),
            var other => Error<VideoValidationMode>(errors, "mode", $"must be v0, v1 or v2, got '{other}'"),
        };
        var format = Text("format") switch
        {
            null or "mp4" => VideoFormat.Mp4,
            "frames" => VideoFormat.Frames,
            "png" => VideoFormat.Png,
            var other => Error<VideoFormat>(errors, "format", $"must be mp4, frames or png, got '{other}'"),
        };
        var manifest = ParseManifest(Text("manifest"), errors);
        var video = form.Files.GetFile(VideoField);
        if (video is null) errors.Add(new FieldError(VideoField, "Field required: the delivered video file"));
        var latent = form.Files.GetFile(FinalLatentField);
        var hFinal = Text("h_final");
        if (mode == VideoValidationMode.V1)
        {
            if (latent is null) errors.Add(new FieldError(FinalLatentField, "Field required with mode v1: the revealed final latent (safetensors with one tensor 'x0')"));
            if (hFinal is null) errors.Add(new FieldError("h_final", "Field required with mode v1: the executor's committed SHA-256 of x0"));
            else if (!Sha256Hex().IsMatch(hFinal)) errors.Add(new FieldError("h_final", "must be a SHA-256 as 64 lowercase hex digits"));
        }
        else
        {
            if (latent is not null) errors.Add(new FieldError(FinalLatentField, "is only taken with mode v1"));
            if (hFinal is not null) errors.Add(new FieldError("h_final", "is only taken with mode v1"));
        }
        if (errors.Count > 0) return (null, RequestBody.Invalid([.. errors]));

        foreach (var file in new[] { video!, latent })
            if (file is not null && file.Length > maxUploadBytes)
                return (null, TooLarge(file.Name, $"the uploaded file is larger than the limit of {maxUploadBytes} bytes (VideoValidation:MaxUploadBytes)"));
        return (new VideoValidationForm(mode, manifest!.Value, video!, format, latent, hFinal), null);
    }

    private static JsonElement? ParseManifest(string? text, List<FieldError> errors)
    {
        if (text is null)
        {
            errors.Add(new FieldError("manifest", "Field required: the executor's video object (GET /v1/videos/{id}) as JSON"));
            return null;
        }
        try
        {
            using var document = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 32 });
            return document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            errors.Add(new FieldError("manifest", $"not valid JSON: {e.Message}"));
            return null;
        }
    }

    private static T Error<T>(List<FieldError> errors, string field, string message)
    {
        errors.Add(new FieldError(field, message));
        return default!;
    }

    private static IResult TooLarge(string field, string message) =>
        ChatCompletionsEndpoint.OpenAiFailure(StatusCodes.Status413PayloadTooLarge, OpenAiError.BadRequestType, message, field);

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Sha256Hex();
}

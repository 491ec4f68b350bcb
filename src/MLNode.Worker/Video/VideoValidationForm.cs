using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using MLNode.Engines.Dit.Output;
using MLNode.Engines.Dit.Validation;
using MLNode.Protocol.Diffusion;
using MLNode.Protocol.Management;
using MLNode.Protocol.OpenAi;
using MLNode.Worker.Api;

namespace MLNode.Worker.Video;

/// <summary>The validation modes of spec §5.6 (C) that a worker runs.</summary>
public enum VideoValidationMode { V0, V1, V2 }

/// <summary>V1's inputs beside the delivered video: the executor's commitment, its final latent, and its reveal of the steps <see cref="Beacon"/> selects.</summary>
public sealed record StepChallenge(TrajectoryCommitment Commitment, IFormFile FinalLatent, IFormFile Reveal, string Beacon, int Count);

/// <summary>
/// A <c>POST /v1/videos/validations</c> multipart form, read strictly: <c>mode</c> (v0, v1 or v2), <c>manifest</c>
/// (the executor's video object as JSON text), <c>video</c> (the delivered file) with its <c>format</c> (mp4, frames or
/// png, as /v1/videos names them; mp4 when absent), and for v1 the executor's answers to a challenge:
/// <c>commitment</c> (its trajectory commitment, JSON text as <c>GET /v1/videos/{id}/commitment</c> gives it),
/// <c>final_latent</c> (safetensors holding "x0", as <c>/final_latent</c> gives it), <c>reveal</c> (the step reveal, as
/// <c>/challenges</c> gives it) with the <c>beacon</c> it answers and optionally the <c>count</c> of steps asked (else
/// <see cref="VideoValidationOptions.ChallengeSteps"/>, at most the job's steps). Any other field, a field given twice,
/// or a file where a value belongs (or the reverse) is refused by name.
/// </summary>
public sealed record VideoValidationForm(
    VideoValidationMode Mode, JsonElement Manifest, IFormFile Video, VideoFormat Format, StepChallenge? Challenge)
{
    public const string VideoField = "video";
    public const string FinalLatentField = "final_latent";
    public const string RevealField = "reveal";

    /// <summary>
    /// Room for the text fields beside the files: the manifest lists a hash per frame and per weight file; a commitment
    /// is about 1.5 KB per step.
    /// </summary>
    public const long FormFieldBytes = 1 << 20;

    private static readonly string[] Values = ["mode", "manifest", "format", "commitment", "beacon", "count"];
    private static readonly string[] Files = [VideoField, FinalLatentField, RevealField];
    private static readonly string[] ChallengeFields = ["commitment", FinalLatentField, RevealField, "beacon", "count"];

    /// <summary>
    /// Reads the form within the limits: the whole body within three uploads plus <see cref="FormFieldBytes"/> (413),
    /// each file within the options' MaxUploadBytes (413 naming it), every field well formed (422 naming it).
    /// </summary>
    public static async Task<(VideoValidationForm? Form, IResult? Error)> ReadAsync(HttpRequest request, VideoValidationOptions options, CancellationToken ct)
    {
        var maxUploadBytes = options.MaxUploadBytes;
        var maxBody = Files.Length * maxUploadBytes + FormFieldBytes;
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
        StepChallenge? challenge = null;
        if (mode == VideoValidationMode.V1) challenge = ReadChallenge(form, options, errors);
        else
            foreach (var name in ChallengeFields.Where(n => form.ContainsKey(n) || form.Files.Any(f => f.Name == n)))
                errors.Add(new FieldError(name, "is only taken with mode v1"));
        if (errors.Count > 0) return (null, RequestBody.Invalid([.. errors]));

        foreach (var file in new[] { video!, challenge?.FinalLatent, challenge?.Reveal })
            if (file is not null && file.Length > maxUploadBytes)
                return (null, TooLarge(file.Name, $"the uploaded file is larger than the limit of {maxUploadBytes} bytes (VideoValidation:MaxUploadBytes)"));
        return (new VideoValidationForm(mode, manifest!.Value, video!, format, challenge), null);
    }

    /// <summary>v1's fields, each required but <c>count</c>; null with the errors added when one is missing or malformed.</summary>
    private static StepChallenge? ReadChallenge(IFormCollection form, VideoValidationOptions options, List<FieldError> errors)
    {
        var before = errors.Count;
        var latent = form.Files.GetFile(FinalLatentField);
        if (latent is null) errors.Add(new FieldError(FinalLatentField, "Field required with mode v1: the revealed final latent (safetensors with one tensor 'x0', GET /v1/videos/{id}/final_latent)"));
        var reveal = form.Files.GetFile(RevealField);
        if (reveal is null) errors.Add(new FieldError(RevealField, "Field required with mode v1: the step reveal (GET /v1/videos/{id}/challenges?beacon=…)"));

        TrajectoryCommitment? commitment = null;
        if (!form.TryGetValue("commitment", out var commitmentText))
            errors.Add(new FieldError("commitment", "Field required with mode v1: the executor's trajectory commitment (GET /v1/videos/{id}/commitment) as JSON"));
        else
        {
            try
            {
                commitment = TrajectoryCommitment.Parse(Encoding.UTF8.GetBytes(commitmentText.ToString()));
            }
            catch (FormatException e)
            {
                errors.Add(new FieldError("commitment", $"not a trajectory commitment: {e.Message}"));
            }
        }

        var beacon = form.TryGetValue("beacon", out var beaconText) ? beaconText.ToString() : null;
        if (string.IsNullOrEmpty(beacon)) errors.Add(new FieldError("beacon", "Field required with mode v1: the public beacon the reveal answers"));
        else if (Encoding.UTF8.GetByteCount(beacon) > VideoVerificationEndpoint.MaxBeaconBytes)
            errors.Add(new FieldError("beacon", $"is {Encoding.UTF8.GetByteCount(beacon)} bytes of UTF-8, over the limit of {VideoVerificationEndpoint.MaxBeaconBytes}"));

        var steps = commitment?.Steps ?? int.MaxValue;
        var count = Math.Min(options.ChallengeSteps, steps);
        if (form.TryGetValue("count", out var countText)
            && (!int.TryParse(countText.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out count) || count < 1 || count > steps))
            errors.Add(new FieldError("count", $"must be an integer in 1..{(commitment is null ? "the job's steps" : steps)}, got '{countText}'"));
        return errors.Count > before ? null : new StepChallenge(commitment!, latent!, reveal!, beacon!, count);
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
}

using System.Diagnostics;
using Microsoft.Extensions.Options;
using MLNode.Engines.Dit;
using MLNode.Engines.Dit.Trajectory;
using MLNode.Engines.Dit.Validation;
using MLNode.Protocol;
using MLNode.Runtime.Checkpoints;
using MLNode.Protocol.Management;
using MLNode.Protocol.OpenAi;
using MLNode.Worker.Node;
using MLNode.Worker.Video;

namespace MLNode.Worker.Api;

/// <summary>
/// <c>POST /v1/videos/validations</c>: a validator's check of another worker's text-to-video job (docs/wan-validation.md),
/// answered synchronously with the verdict, each check (name, value, threshold, rule, pass) and the stages' times.
/// Mode v0 checks the delivered video against the manifest on the request thread, in milliseconds; v1 adds the decode
/// check of the revealed final latent and the replay of the challenged steps against the executor's trajectory
/// commitment, and v2 regenerates the job, both on the loaded model (503 without one, 409 when this node cannot replay
/// the job's spec), run through <see cref="VideoJobQueue.RunOnModelAsync"/> so that they take turns with queued jobs
/// instead of sharing the model with one. V1 and V2 are skipped when V0 already rejects.
/// The client going away cancels a regeneration between steps.
/// </summary>
public static class VideoValidationsEndpoint
{
    public const string Path = "/v1/videos/validations";

    public static void MapVideoValidations(this IEndpointRouteBuilder app) =>
        app.MapPost(Path, (HttpContext http, NodeController node, VideoJobQueue queue, IOptions<VideoOptions> video,
            IOptions<VideoValidationOptions> validation, ILogger<WanVideoValidator> logger, CancellationToken ct) =>
            ValidateAsync(http.Request, node, queue, video.Value, validation.Value, logger, ct));

    private static async Task<IResult> ValidateAsync(HttpRequest request, NodeController node, VideoJobQueue queue, VideoOptions videoOptions,
        VideoValidationOptions options, ILogger logger, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var (form, formError) = await VideoValidationForm.ReadAsync(request, options, ct);
        if (form is null) return formError!;
        VideoManifest manifest;
        try
        {
            manifest = VideoManifest.Parse(form.Manifest);
        }
        catch (ValidationInputException e)
        {
            return RequestBody.Invalid(new FieldError(e.Field, e.Message));
        }

        IVideoExecutor? executor = null;
        if (form.Mode != VideoValidationMode.V0)
        {
            if (node.Model is not IVideoExecutor loaded) return SystemEndpoints.NoBackend();
            if (WanVideoValidator.FindReplayConflict(loaded.Planner.WithLimits(videoOptions.Limits), manifest.Spec) is { } conflict)
                return ChatCompletionsEndpoint.OpenAiFailure(StatusCodes.Status409Conflict, OpenAiError.BadRequestType, conflict.Message, $"manifest.job_spec.{conflict.Field}");
            executor = loaded;
        }

        var folder = Directory.CreateTempSubdirectory("mlnode-validation-");
        try
        {
            var verdict = new ValidationVerdict();
            var challenge = form.Challenge;
            using var latent = challenge is null ? null
                : FinalLatent.Read(await SpoolAsync(challenge.FinalLatent, folder.FullName, ct), VideoValidationForm.FinalLatentField);
            using var reveal = challenge is null ? null : OpenReveal(await SpoolAsync(challenge.Reveal, folder.FullName, ct));
            var videoPath = await SpoolAsync(form.Video, folder.FullName, ct);
            var video = await verdict.TimeAsync("read_video_ms",
                () => new DeliveredVideoReader(videoOptions.FFmpegPath).ReadAsync(videoPath, form.Format, manifest.Spec, ct));

            var validator = new WanVideoValidator(options);
            var delivered = verdict.Time("v0_ms", () => validator.CheckDelivery(manifest, video, verdict));
            if (delivered && executor is not null)
            {
                var ran = await queue.RunOnModelAsync(executor, async token =>
                {
                    if (challenge is null)
                    {
                        await validator.CheckRegenerationAsync(manifest, video, executor, verdict, token);
                        return;
                    }
                    await validator.CheckDecodeAsync(manifest, video, latent!, challenge.Commitment, executor, verdict, token);
                    try
                    {
                        await validator.CheckStepsAsync(manifest, challenge.Commitment, reveal!, challenge.Beacon, challenge.Count, executor, verdict, token);
                    }
                    catch (FormatException e)
                    {
                        throw new ValidationInputException(VideoValidationForm.RevealField, e.Message);
                    }
                }, ct);
                if (!ran) return SystemEndpoints.NoBackend();
            }
            logger.LogInformation("Validation {Mode} of job {JobId}: {Verdict} ({Failed}) in {Ms:F0} ms", form.Mode, manifest.JobId,
                verdict.Accept ? "accept" : "reject", string.Join(", ", verdict.Checks.Where(c => !c.Pass).Select(c => c.Name)), clock.Elapsed.TotalMilliseconds);
            return Results.Json(Describe(form.Mode, manifest, verdict, clock.Elapsed), GonkaJson.Options);
        }
        catch (ValidationInputException e)
        {
            return RequestBody.Invalid(new FieldError(e.Field, e.Message));
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    private static object Describe(VideoValidationMode mode, VideoManifest manifest, ValidationVerdict verdict, TimeSpan total) => new
    {
        @object = "video.validation",
        mode = mode.ToString().ToLowerInvariant(),
        job_id = manifest.JobId,
        verdict = new { accept = verdict.Accept, bit_exact = verdict.BitExact },
        checks = verdict.Checks,
        timings = new Dictionary<string, double>(verdict.TimingsMs) { ["total_ms"] = total.TotalMilliseconds },
    };

    /// <summary>Opens the uploaded step reveal; a file that is none is the request's fault, named <c>reveal</c>.</summary>
    private static RevealBundle OpenReveal(string path)
    {
        try
        {
            return RevealBundle.Open(path);
        }
        catch (Exception e) when (e is FormatException or SafetensorsFormatException)
        {
            throw new ValidationInputException(VideoValidationForm.RevealField, $"not a step reveal: {e.Message.Replace(path, "upload", StringComparison.Ordinal)}");
        }
    }

    /// <summary>Copies an upload into a private file of the request's own folder (FFmpeg and the safetensors reader want a path).</summary>
    private static async Task<string> SpoolAsync(IFormFile file, string folder, CancellationToken ct)
    {
        var path = System.IO.Path.Combine(folder, file.Name);
        var create = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        await using var target = new FileStream(path, create);
        await using var upload = file.OpenReadStream();
        await upload.CopyToAsync(target, ct);
        return path;
    }
}

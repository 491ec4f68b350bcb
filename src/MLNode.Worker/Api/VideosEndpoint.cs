using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using MLNode.Engines.Dit;
using MLNode.Engines.Dit.Output;
using MLNode.Protocol;
using MLNode.Protocol.Management;
using MLNode.Protocol.OpenAi;
using MLNode.Worker.Node;
using MLNode.Worker.Video;

namespace MLNode.Worker.Api;

/// <summary>
/// vLLM-Omni's video API over the loaded text-to-video model: <c>POST /v1/videos</c> queues a job and answers
/// <c>{id, status: queued}</c>; <c>GET /v1/videos/{id}</c> gives its status, progress (step k of S, ETA), the job spec
/// with every default filled in, its job id (SHA-256 of the canonical spec), its price and, when done, its hashes and
/// trajectory commitment's root (the commitment and step challenges: <see cref="VideoVerificationEndpoint"/>);
/// <c>/content</c> serves the MP4 or the lossless format asked for; DELETE cancels and removes it;
/// <c>POST /v1/videos/sync</c> runs a job and answers its content.
/// </summary>
public static class VideosEndpoint
{
    public static void MapVideos(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/videos", (HttpContext http, NodeController node, VideoJobQueue queue, IOptions<VideoOptions> options, CancellationToken ct) =>
            CreateAsync(http, node, queue, options.Value, wait: false, ct));
        app.MapPost("/v1/videos/sync", (HttpContext http, NodeController node, VideoJobQueue queue, IOptions<VideoOptions> options, CancellationToken ct) =>
            CreateAsync(http, node, queue, options.Value, wait: true, ct));
        app.MapGet("/v1/videos", (VideoJobQueue queue) =>
            Results.Json(new { @object = "list", data = queue.Jobs.Select(Describe).ToArray() }, GonkaJson.Options));
        app.MapGet("/v1/videos/{id}", (string id, VideoJobQueue queue) =>
            queue.Find(id) is { } job ? Results.Json(Describe(job), GonkaJson.Options) : NotFound(id));
        app.MapGet("/v1/videos/{id}/content", (string id, VideoJobQueue queue) => Content(queue.Find(id), id));
        app.MapDelete("/v1/videos/{id}", async (string id, VideoJobQueue queue) =>
            await queue.DeleteAsync(id) ? Results.Json(new { id, @object = "video.deleted", deleted = true }, GonkaJson.Options) : NotFound(id));
    }

    private static async Task<IResult> CreateAsync(HttpContext http, NodeController node, VideoJobQueue queue, VideoOptions options, bool wait, CancellationToken ct)
    {
        if (node.Model is not IVideoExecutor video) return SystemEndpoints.NoBackend();
        // A job is a prompt and a few numbers: the JSON bodies' 1 MiB limit, not the worker's upload-sized one.
        if (http.Request.ContentLength > RequestBody.DefaultMaxBytes)
            return RequestBody.Detail(StatusCodes.Status413PayloadTooLarge, $"body: request body exceeds the limit of {RequestBody.DefaultMaxBytes} bytes");
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            limit.MaxRequestBodySize = RequestBody.DefaultMaxBytes;
        var (form, formErrors) = await VideoForm.ReadAsync(http.Request, ct);
        if (form is null) return RequestBody.Invalid([.. formErrors]);
        if (form.Model is { } model && model != video.Card.Id)
            return ChatCompletionsEndpoint.OpenAiFailure(StatusCodes.Status404NotFound, "NotFoundError", $"The model `{model}` does not exist.", "model");
        var planner = video.Planner.WithLimits(options.Limits);
        var (request, format, errors) = form.ToRequest(planner.Defaults.Fps);
        if (request is null) return RequestBody.Invalid([.. errors]);
        WanJobSpec spec;
        try
        {
            spec = planner.Plan(request);
        }
        catch (WanJobException e)
        {
            return RequestBody.Invalid(new FieldError(e.Field, e.Message));
        }

        var job = new VideoJob($"video_{Guid.NewGuid():N}", spec, planner.Cost(spec), format, DateTimeOffset.UtcNow);
        if (!queue.TryEnqueue(job))
            return ChatCompletionsEndpoint.OpenAiFailure(StatusCodes.Status429TooManyRequests, OpenAiError.BadRequestType,
                $"{options.MaxQueuedJobs} video jobs are already waiting; try again later", "prompt");
        if (!wait) return Results.Json(Describe(job), GonkaJson.Options);

        // The client going away cancels its job, as it would a streamed completion.
        await using (ct.Register(() => job.Cancellation.Cancel()))
            await job.Finished;
        return Content(job, job.Id);
    }

    private static IResult Content(VideoJob? job, string id)
    {
        if (job is null) return NotFound(id);
        if (job.Status != VideoJobStatus.Completed || job.ContentPath is null)
            return ChatCompletionsEndpoint.OpenAiFailure(StatusCodes.Status409Conflict, OpenAiError.BadRequestType,
                $"video {id} is {Status(job.Status)}{(job.Error is null ? "" : $": {job.Error}")}; its content is served once it completes", "id");
        var name = job.Format switch { VideoFormat.Mp4 => "video.mp4", VideoFormat.Png => "frames.zip", _ => "frames.rgb" };
        return Results.File(job.ContentPath, VideoJob.MediaType(job.Format), $"{id}-{name}");
    }

    internal static IResult NotFound(string id) =>
        ChatCompletionsEndpoint.OpenAiFailure(StatusCodes.Status404NotFound, "NotFoundError", $"Video `{id}` does not exist.", "id");

    internal static string Status(VideoJobStatus status) => status switch
    {
        VideoJobStatus.Queued => "queued",
        VideoJobStatus.InProgress => "in_progress",
        VideoJobStatus.Completed => "completed",
        VideoJobStatus.Failed => "failed",
        _ => "cancelled",
    };

    /// <summary>OpenAI's video object with the network's extensions (job spec, job id, cost, step progress, hashes).</summary>
    private static object Describe(VideoJob job)
    {
        var progress = job.Progress;
        var spec = job.Spec;
        return new
        {
            id = job.Id,
            @object = "video",
            model = spec.Model,
            status = Status(job.Status),
            created_at = job.CreatedAt.ToUnixTimeSeconds(),
            completed_at = job.CompletedAt?.ToUnixTimeSeconds(),
            progress = job.Status == VideoJobStatus.Completed ? 100 : progress is null ? 0 : 100 * progress.Step / progress.Steps,
            step = progress?.Step ?? 0,
            steps = spec.NumInferenceSteps,
            eta_seconds = job.IsFinal ? 0 : progress?.Remaining.TotalSeconds,
            size = $"{spec.Width}x{spec.Height}",
            seconds = (spec.NumFrames / (double)spec.Fps).ToString("0.###", System.Globalization.CultureInfo.InvariantCulture),
            output_format = job.Format.ToString().ToLowerInvariant(),
            job_id = job.JobId,
            job_spec = System.Text.Json.JsonDocument.Parse(spec.CanonicalJson()).RootElement,
            cost = new
            {
                cost_units = job.Cost.CostUnits,
                forward_passes = job.Cost.ForwardPasses,
                latent_patches = job.Cost.LatentPatches,
                flops_per_forward = job.Cost.FlopsPerForward,
            },
            hashes = job.Hashes is { } h ? new { frames_sha256 = h.FramesSha256, mp4_sha256 = h.Mp4Sha256, phash = h.PHashes, dhash = h.DHashes } : null,
            trajectory = job.Trajectory is { } t
                ? new
                {
                    merkle_root = Convert.ToHexStringLower(t.MerkleRoot),
                    h_final = Convert.ToHexStringLower(t.FinalHash),
                    challenge_window_ends_at = job.ChallengeDeadline?.ToUnixTimeSeconds(),
                }
                : null,
            error = job.Error is null ? null : new { message = job.Error },
        };
    }
}

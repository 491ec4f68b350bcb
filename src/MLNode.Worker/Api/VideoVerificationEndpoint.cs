using System.Globalization;
using System.Text;
using Microsoft.Extensions.Options;
using MLNode.Engines.Dit.Trajectory;
using MLNode.Protocol.OpenAi;
using MLNode.Worker.Video;

namespace MLNode.Worker.Api;

/// <summary>
/// The executor's side of video verification (docs/wan-verification.md), for a completed <c>/v1/videos</c> job:
/// <c>GET /v1/videos/{id}/commitment</c> answers its trajectory commitment (JSON);
/// <c>GET /v1/videos/{id}/challenges?beacon=…&amp;count=…</c> the reveal of the steps the beacon selects, as one
/// safetensors file (<see cref="RevealBundle"/>); <c>GET /v1/videos/{id}/final_latent</c> the final latent x0 as
/// safetensors (tensor <c>x0</c>). Unknown id 404; not completed 409; challenge window closed (sampler states deleted)
/// 410; a bad beacon or count 400 naming it.
/// </summary>
public static class VideoVerificationEndpoint
{
    /// <summary>The longest beacon accepted, in UTF-8 bytes: a block hash or a few of them, with room to spare.</summary>
    public const int MaxBeaconBytes = 1024;

    private const string SafetensorsMediaType = "application/octet-stream";

    public static void MapVideoVerification(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/videos/{id}/commitment", (string id, VideoJobQueue queue) =>
        {
            var (job, error) = Completed(queue, id);
            return job is null ? error! : Results.Bytes(job.Trajectory!.ToJson(), "application/json");
        });
        app.MapGet("/v1/videos/{id}/challenges", (string id, HttpRequest request, VideoJobQueue queue, IOptions<VideoOptions> options, ILoggerFactory loggers, CancellationToken ct) =>
            ChallengesAsync(id, request.Query, queue, options.Value, loggers.CreateLogger(typeof(VideoVerificationEndpoint).FullName!), ct));
        app.MapGet("/v1/videos/{id}/final_latent", (string id, VideoJobQueue queue) => FinalLatent(id, queue));
    }

    private static async Task<IResult> ChallengesAsync(string id, IQueryCollection query, VideoJobQueue queue, VideoOptions options, ILogger logger, CancellationToken ct)
    {
        var (job, error) = Completed(queue, id);
        if (job is null) return error!;
        var steps = job.Trajectory!.Steps;
        if (query["beacon"] is not { Count: 1 } beacons || string.IsNullOrEmpty(beacons[0]))
            return BadRequest("beacon", "beacon is required, once: the public beacon string that selects the challenged steps");
        var beacon = beacons[0]!;
        if (Encoding.UTF8.GetByteCount(beacon) > MaxBeaconBytes)
            return BadRequest("beacon", $"beacon is {Encoding.UTF8.GetByteCount(beacon)} bytes of UTF-8, over the limit of {MaxBeaconBytes}");
        var count = Math.Min(options.ChallengeSteps, steps);
        if (query["count"] is { Count: > 0 } counts
            && (counts.Count > 1 || !int.TryParse(counts[0], NumberStyles.None, CultureInfo.InvariantCulture, out count) || count < 1 || count > steps))
            return BadRequest("count", $"count must be one integer in 1..{steps} (the job's steps), got '{string.Join(",", counts.ToArray())}'");
        if (Gone(job, id) is { } gone) return gone;

        var states = job.StepStates!;
        var path = Path.Combine(Path.GetDirectoryName(states.Folder)!, $"reveal-{Guid.NewGuid():N}.safetensors");
        try
        {
            var manifest = await Task.Run(() => RevealBundle.Write(path, job.Trajectory, states, beacon, count), ct);
            // Deleted when the response has been sent: each beacon's reveal is written afresh, none is kept.
            var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16, FileOptions.DeleteOnClose | FileOptions.Asynchronous);
            logger.LogInformation("Video job {Id}: revealed steps {Steps} for beacon {Beacon} ({MiB:F1} MiB)",
                id, string.Join(",", manifest.Challenged), beacon, stream.Length / 1048576.0);
            return Results.Stream(stream, SafetensorsMediaType, $"{id}-challenges.safetensors");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            if (File.Exists(path)) File.Delete(path);
            return GoneNow(id);
        }
    }

    private static IResult FinalLatent(string id, VideoJobQueue queue)
    {
        var (job, error) = Completed(queue, id);
        if (job is null) return error!;
        if (Gone(job, id) is { } gone) return gone;
        try
        {
            var stream = new FileStream(job.StepStates!.FinalPath, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16, FileOptions.Asynchronous);
            return Results.Stream(stream, SafetensorsMediaType, $"{id}-final_latent.safetensors");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return GoneNow(id);
        }
    }

    /// <summary>The job when it exists and has completed (so it has a commitment), else the 404 or 409 to answer.</summary>
    private static (VideoJob? Job, IResult? Error) Completed(VideoJobQueue queue, string id)
    {
        if (queue.Find(id) is not { } job) return (null, VideosEndpoint.NotFound(id));
        if (job.Status != VideoJobStatus.Completed || job.Trajectory is null)
            return (null, ChatCompletionsEndpoint.OpenAiFailure(StatusCodes.Status409Conflict, OpenAiError.BadRequestType,
                $"video {id} is {VideosEndpoint.Status(job.Status)}; its trajectory is committed once it completes", "id"));
        return (job, null);
    }

    /// <summary>The 410 once the challenge window has closed, whether or not the sweep has deleted the states yet.</summary>
    private static IResult? Gone(VideoJob job, string id) =>
        job.StepStates is null || DateTimeOffset.UtcNow >= job.ChallengeDeadline
            ? ChatCompletionsEndpoint.OpenAiFailure(StatusCodes.Status410Gone, "GoneError",
                $"video {id}'s challenge window closed at {job.ChallengeDeadline:u}; its sampler states are deleted", "id")
            : null;

    private static IResult GoneNow(string id) =>
        ChatCompletionsEndpoint.OpenAiFailure(StatusCodes.Status410Gone, "GoneError", $"video {id}'s sampler states were deleted just now", "id");

    private static IResult BadRequest(string param, string message) =>
        ChatCompletionsEndpoint.OpenAiFailure(StatusCodes.Status400BadRequest, OpenAiError.BadRequestType, message, param);
}

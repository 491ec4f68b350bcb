using MLNode.Engines.Dit;
using MLNode.Engines.Dit.Output;
using MLNode.Engines.Dit.Trajectory;
using MLNode.Protocol.Diffusion;

namespace MLNode.Worker.Video;

/// <summary>The states of vLLM-Omni's (and OpenAI's) video object, plus cancelled.</summary>
public enum VideoJobStatus { Queued, InProgress, Completed, Failed, Cancelled }

/// <summary>
/// One text-to-video job: its spec (all defaults filled in), price, requested output format, and what the queue has made
/// of it so far. Progress fields are written by the queue's thread and read by requests: each is a single reference or
/// value, so a reader sees a step's values or the next step's, never a torn one.
/// </summary>
public sealed class VideoJob(string id, WanJobSpec spec, WanJobCost cost, VideoFormat format, DateTimeOffset createdAt)
{
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Id { get; } = id;
    public WanJobSpec Spec { get; } = spec;
    public string JobId { get; } = spec.JobId;
    public WanJobCost Cost { get; } = cost;
    public VideoFormat Format { get; } = format;
    public DateTimeOffset CreatedAt { get; } = createdAt;
    public CancellationTokenSource Cancellation { get; } = new();

    public volatile VideoJobStatus Status = VideoJobStatus.Queued;
    public WanStepProgress? Progress { get; set; }
    public DateTimeOffset? CompletedAt { get; set; }
    public string? Error { get; set; }
    public VideoHashes? Hashes { get; set; }

    /// <summary>The file the content endpoint serves, once completed.</summary>
    public string? ContentPath { get; set; }

    /// <summary>The commitment to the job's denoising trajectory, once completed.</summary>
    public TrajectoryCommitment? Trajectory { get; set; }

    /// <summary>The job's sampler states, from its start until its challenge window is swept (then null).</summary>
    public StepStateStore? StepStates { get; set; }

    /// <summary>When the challenge window closes: the job's completion plus <see cref="VideoOptions.ChallengeWindow"/>.</summary>
    public DateTimeOffset? ChallengeDeadline { get; set; }

    /// <summary>Completes when the job has reached a final state.</summary>
    public Task Finished => _finished.Task;

    public bool IsFinal => Status is VideoJobStatus.Completed or VideoJobStatus.Failed or VideoJobStatus.Cancelled;

    public void Finish(VideoJobStatus status, string? error = null)
    {
        Error = error;
        CompletedAt = DateTimeOffset.UtcNow;
        Status = status;
        _finished.TrySetResult();
    }

    public static string MediaType(VideoFormat format) => format switch
    {
        VideoFormat.Mp4 => "video/mp4",
        VideoFormat.Png => "application/zip",
        _ => "application/octet-stream",
    };
}

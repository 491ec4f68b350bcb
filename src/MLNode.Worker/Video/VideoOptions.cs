using MLNode.Engines.Dit;

namespace MLNode.Worker.Video;

/// <summary>Settings of the text-to-video jobs (section "Video").</summary>
public sealed class VideoOptions
{
    public const string Section = "Video";

    /// <summary>Where finished jobs' outputs stay (one folder per job) until deleted.</summary>
    public string OutputDir { get; set; } = Path.Combine(Path.GetTempPath(), "mlnode-videos");

    public int MaxFrames { get; set; } = 129;
    public long MaxPixels { get; set; } = 1280L * 720;
    public int MaxSteps { get; set; } = 100;

    /// <summary>Jobs waiting behind the running one; a request past this is refused with 429.</summary>
    public int MaxQueuedJobs { get; set; } = 16;

    public string FFmpegPath { get; set; } = "ffmpeg";

    public WanJobLimits Limits => new(MaxFrames, MaxPixels, MaxSteps);

    public bool IsValid => MaxFrames > 0 && MaxPixels > 0 && MaxSteps > 0 && MaxQueuedJobs > 0
        && !string.IsNullOrWhiteSpace(OutputDir) && !string.IsNullOrWhiteSpace(FFmpegPath);
}

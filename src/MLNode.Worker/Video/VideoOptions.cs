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

    /// <summary>
    /// How long after a job completes its sampler states (every step's x̃_k, v_k and last sample, and the final latent)
    /// are kept for step challenges; then they are deleted and the challenge routes answer 410. The job's output stays
    /// until DELETE.
    /// </summary>
    public TimeSpan ChallengeWindow { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How often expired sampler states are looked for.</summary>
    public TimeSpan ChallengeSweepInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Steps a challenge reveals when the request names no count (dit-wan22.md §5.6: c = 2, one per expert).</summary>
    public int ChallengeSteps { get; set; } = 2;

    public WanJobLimits Limits => new(MaxFrames, MaxPixels, MaxSteps);

    public bool IsValid => MaxFrames > 0 && MaxPixels > 0 && MaxSteps > 0 && MaxQueuedJobs > 0
        && !string.IsNullOrWhiteSpace(OutputDir) && !string.IsNullOrWhiteSpace(FFmpegPath)
        && ChallengeWindow > TimeSpan.Zero && ChallengeSweepInterval > TimeSpan.Zero && ChallengeSteps > 0;
}

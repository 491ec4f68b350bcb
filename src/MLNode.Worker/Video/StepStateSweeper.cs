using Microsoft.Extensions.Options;

namespace MLNode.Worker.Video;

/// <summary>
/// Deletes completed jobs' sampler states once their challenge window has closed (<see cref="VideoOptions.ChallengeWindow"/>),
/// looking every <see cref="VideoOptions.ChallengeSweepInterval"/>; the jobs' outputs stay until DELETE.
/// </summary>
public sealed class StepStateSweeper(VideoJobQueue queue, IOptions<VideoOptions> options) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.ChallengeSweepInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
                Sweep(DateTimeOffset.UtcNow);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // The worker is stopping.
        }
    }

    private void Sweep(DateTimeOffset now)
    {
        foreach (var job in queue.Jobs)
            if (job.StepStates is not null && job.ChallengeDeadline <= now)
                queue.DeleteStepStates(job, "its challenge window closed");
    }
}

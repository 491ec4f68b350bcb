using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Options;
using MLNode.Engines.Dit;
using MLNode.Engines.Dit.Output;
using MLNode.Engines.Dit.Trajectory;
using MLNode.Worker.Node;

namespace MLNode.Worker.Video;

/// <summary>
/// Runs text-to-video jobs one at a time on the loaded model, in the order they came. A job that fails is marked failed
/// and the queue goes on; a cancelled job (DELETE) stops between denoising steps. Each finished job's outputs stay in
/// its own folder under <see cref="VideoOptions.OutputDir"/>: <c>frames.rgb</c> (the canonical frames), the requested
/// format's file, and <c>job.json</c> (the spec); its sampler states (<see cref="StepStatesFolder"/>) stay there for
/// the challenge window only. Other work on the model (a validator's decode, step replay or regeneration) runs through
/// <see cref="RunOnModelAsync"/>, between jobs: the model never runs two things at once, and the queue's order and
/// states are untouched (a job waiting for the model stays queued; DELETE still cancels it).
/// </summary>
public sealed class VideoJobQueue(NodeController node, IOptions<VideoOptions> options, VideoMetrics metrics, ILogger<VideoJobQueue> logger) : BackgroundService
{
    public const string FramesFile = "frames.rgb";
    public const string StepStatesFolder = "steps";

    private readonly Channel<VideoJob> _waiting = Channel.CreateUnbounded<VideoJob>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<string, VideoJob> _jobs = new(StringComparer.Ordinal);
    private readonly VideoOptions _options = options.Value;
    private readonly SemaphoreSlim _model = new(1, 1);
    private int _queued;

    public IEnumerable<VideoJob> Jobs => _jobs.Values.OrderBy(j => j.CreatedAt);

    public VideoJob? Find(string id) => _jobs.GetValueOrDefault(id);

    /// <summary>Queues <paramref name="job"/>; false when <see cref="VideoOptions.MaxQueuedJobs"/> are already waiting.</summary>
    public bool TryEnqueue(VideoJob job)
    {
        if (Interlocked.Increment(ref _queued) > _options.MaxQueuedJobs)
        {
            Interlocked.Decrement(ref _queued);
            return false;
        }
        _jobs[job.Id] = job;
        metrics.Reached(VideoJobStatus.Queued);
        metrics.Waiting(_queued);
        return _waiting.Writer.TryWrite(job);
    }

    /// <summary>
    /// Runs <paramref name="work"/> once no job (nor other such work) is using the model, which it holds meanwhile: the
    /// next job starts after it. False (nothing run) when by then <paramref name="executor"/> is no longer the loaded model.
    /// </summary>
    public async Task<bool> RunOnModelAsync(IVideoExecutor executor, Func<CancellationToken, Task> work, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(work);
        await _model.WaitAsync(ct);
        try
        {
            if (!ReferenceEquals(node.Model, executor)) return false;
            await work(ct);
            return true;
        }
        finally
        {
            _model.Release();
        }
    }

    /// <summary>Cancels the job if it has not finished, waits for it to stop, and removes it and its outputs.</summary>
    public async Task<bool> DeleteAsync(string id)
    {
        if (!_jobs.TryGetValue(id, out var job)) return false;
        await job.Cancellation.CancelAsync();
        // A queued job is finished here; a running one stops at its next step.
        if (job.Status == VideoJobStatus.Queued) Finish(job, VideoJobStatus.Cancelled, "cancelled before it started");
        await job.Finished;
        _jobs.TryRemove(id, out _);
        var folder = Folder(job);
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        job.Cancellation.Dispose();
        return true;
    }

    /// <summary>
    /// Deletes the job's sampler states, keeping its output, and logs what they took; a deletion the file system refuses
    /// is logged and left for the next sweep.
    /// </summary>
    public void DeleteStepStates(VideoJob job, string why)
    {
        if (job.StepStates is not { } states) return;
        try
        {
            var bytes = new DirectoryInfo(states.Folder).EnumerateFiles().Sum(f => f.Length);
            Directory.Delete(states.Folder, recursive: true);
            logger.LogInformation("Video job {Id}: deleted its sampler states ({MiB:F1} MiB): {Why}", job.Id, bytes / 1048576.0, why);
        }
        catch (DirectoryNotFoundException)
        {
            // DELETE removed the whole job folder first, or the job failed before its first step.
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning(e, "Video job {Id}: could not delete its sampler states in {Folder}", job.Id, states.Folder);
            return;
        }
        job.StepStates = null;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await foreach (var job in _waiting.Reader.ReadAllAsync(stoppingToken))
        {
            Interlocked.Decrement(ref _queued);
            metrics.Waiting(_queued);
            if (job.IsFinal) continue;
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(job.Cancellation.Token, stoppingToken);
            try
            {
                await RunAsync(job, stop.Token);
                Finish(job, VideoJobStatus.Completed);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                Finish(job, VideoJobStatus.Cancelled, "cancelled");
            }
            catch (Exception e)
            {
                logger.LogError(e, "Video job {Id} ({JobId}) failed", job.Id, job.JobId);
                DeleteStepStates(job, "the job failed");
                Finish(job, VideoJobStatus.Failed, e is WanJobException ? e.Message : $"{e.GetType().Name}: {e.Message}");
            }
        }
    }

    private async Task RunAsync(VideoJob job, CancellationToken ct)
    {
        var folder = Directory.CreateDirectory(Folder(job)).FullName;
        var states = job.StepStates = new StepStateStore(Path.Combine(folder, StepStatesFolder));
        WanGeneration generation;
        await _model.WaitAsync(ct);
        try
        {
            if (node.Model is not IVideoExecutor executor) throw new InvalidOperationException("no text-to-video model is loaded");
            job.Status = VideoJobStatus.InProgress;
            logger.LogInformation("Video job {Id} ({JobId}): {Width}×{Height}, {Frames} frames, {Steps} steps, {Cost:E3} FLOP",
                job.Id, job.JobId, job.Spec.Width, job.Spec.Height, job.Spec.NumFrames, job.Spec.NumInferenceSteps, job.Cost.CostUnits);
            var last = TimeSpan.Zero;
            generation = await executor.GenerateAsync(job.Spec, progress =>
            {
                metrics.Step(progress.Elapsed - last);
                logger.LogInformation("Video job {Id}: step {Step}/{Steps} (t = {Timestep}, expert {Expert}) in {Seconds:F2} s, about {Remaining:F0} s left",
                    job.Id, progress.Step, progress.Steps, progress.Timestep, progress.Expert, (progress.Elapsed - last).TotalSeconds, progress.Remaining.TotalSeconds);
                last = progress.Elapsed;
                job.Progress = progress;
            }, states, ct);
        }
        finally
        {
            _model.Release();
        }

        var video = generation.Video;
        await File.WriteAllBytesAsync(Path.Combine(folder, FramesFile), video.Frames, ct);
        await File.WriteAllBytesAsync(Path.Combine(folder, "job.json"), job.Spec.CanonicalJson(), ct);
        byte[]? mp4 = null;
        switch (job.Format)
        {
            case VideoFormat.Mp4:
                mp4 = await new VideoEncoder(_options.FFmpegPath).Mp4Async(video, job.Spec.Fps, ct);
                job.ContentPath = Path.Combine(folder, "video.mp4");
                await File.WriteAllBytesAsync(job.ContentPath, mp4, ct);
                break;
            case VideoFormat.Png:
                job.ContentPath = Path.Combine(folder, "frames.zip");
                await File.WriteAllBytesAsync(job.ContentPath, PngArchive.Zip(video), ct);
                break;
            default:
                job.ContentPath = Path.Combine(folder, FramesFile);
                break;
        }
        job.Hashes = VideoHashes.Of(video, mp4);
        job.Trajectory = generation.Trajectory;
        job.ChallengeDeadline = DateTimeOffset.UtcNow + _options.ChallengeWindow;
        logger.LogInformation("Video job {Id}: trajectory root {Root}; sampler states of {Steps} steps, {MiB:F1} MiB, kept until {Deadline:u}",
            job.Id, Convert.ToHexStringLower(generation.Trajectory.MerkleRoot), generation.Trajectory.Steps, states.BytesWritten / 1048576.0, job.ChallengeDeadline);
    }

    private void Finish(VideoJob job, VideoJobStatus status, string? error = null)
    {
        if (job.IsFinal) return;
        job.Finish(status, error);
        metrics.Reached(status);
    }

    private string Folder(VideoJob job) => Path.Combine(_options.OutputDir, job.Id);
}

using System.Diagnostics;
using MLNode.Engines.Hosting;
using MLNode.Protocol.Management;
using MLNode.Protocol.Poc;

namespace MLNode.Worker.Poc;

/// <summary>
/// Continuous generation of one round, from init/generate to stop: takes <c>batch_size</c> nonces at a time from
/// this backend's nonce sequence (group 0 of 1: the worker is its node's only backend), computes their artifacts
/// (a failed forward is repeated with the same nonces, so the sequence has no gaps), hands them to the /generated
/// stream, and counts them.
/// </summary>
public sealed class GenerationRound
{
    private readonly CancellationTokenSource _stop;
    private readonly long _started = Stopwatch.GetTimestamp();
    private long _processed;

    private GenerationRound(PocGenerationConfig config, CancellationToken shutdown)
    {
        Config = config;
        _stop = CancellationTokenSource.CreateLinkedTokenSource(shutdown);
    }

    public PocGenerationConfig Config { get; }

    /// <summary>Completes when the loop has ended (stopped, or the host shut down).</summary>
    public Task Completion { get; private set; } = Task.CompletedTask;

    public PocGenerationStats Stats
    {
        get
        {
            var processed = Interlocked.Read(ref _processed);
            var seconds = Stopwatch.GetElapsedTime(_started).TotalSeconds;
            return new PocGenerationStats(processed, seconds > 0 ? processed / seconds : 0);
        }
    }

    /// <summary>Starts the loop; <paramref name="lease"/> (the gate's generation mark) is released when it ends.</summary>
    public static GenerationRound Start(
        PocGenerationConfig config, IPocProver prover, PocRound round, int batchSize, GeneratedArtifactStream? stream,
        IDisposable lease, PocCompute compute, PocOptions options, PocMetrics metrics, ILogger logger, CancellationToken shutdown)
    {
        var generation = new GenerationRound(config, shutdown);
        generation.Completion = generation.RunAsync(prover, round, batchSize, stream, lease, compute, options, metrics, logger);
        return generation;
    }

    /// <summary>Ends the loop after the forward in progress and waits for it.</summary>
    public Task StopAsync()
    {
        _stop.Cancel();
        return Completion;
    }

    private async Task RunAsync(
        IPocProver prover, PocRound round, int batchSize, GeneratedArtifactStream? stream,
        IDisposable lease, PocCompute compute, PocOptions options, PocMetrics metrics, ILogger logger)
    {
        await Task.Yield();
        var ct = _stop.Token;
        var nonces = new NonceIterator(Config.NodeId, Config.NodeCount, Config.GroupId, Config.NGroups);
        var progress = new Progress(options.ProgressLogInterval);
        logger.LogInformation("PoC generation started: block {Height} {Hash}, node {Node}/{Nodes}, seq_len {SeqLen}, k_dim {KDim}, batch {Batch}",
            Config.BlockHeight, Config.BlockHash, Config.NodeId, Config.NodeCount, Config.SeqLen, Config.KDim, batchSize);
        try
        {
            while (true)
            {
                var batch = nonces.Take(batchSize);
                var artifacts = await compute.ComputeAsync(prover, round, batch, giveUpAfter: null, ct);
                stream?.Add(artifacts);
                var total = Interlocked.Add(ref _processed, batch.Length);
                metrics.NoncesComputed(batch.Length);
                if (progress.Due(total) is { } rate)
                {
                    metrics.SetRate(rate);
                    logger.LogInformation("PoC generation: {Total} nonces, {Rate:0.0} nonces/s (average {Average:0.0} nonces/s)",
                        total, rate, Stats.NoncesPerSecond);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // stop or shutdown
        }
        catch (Exception e)
        {
            logger.LogError(e, "PoC generation failed");
        }
        finally
        {
            lease.Dispose();
            stream?.Complete();
            metrics.SetRate(0);
            var stats = Stats;
            logger.LogInformation("PoC generation stopped: {Total} nonces in {Seconds:0.0} s ({Rate:0.0} nonces/s)",
                stats.TotalProcessed, Stopwatch.GetElapsedTime(_started).TotalSeconds, stats.NoncesPerSecond);
        }
    }

    /// <summary>Throughput since the last report, once per interval.</summary>
    private sealed class Progress(TimeSpan interval)
    {
        private long _lastAt = Stopwatch.GetTimestamp();
        private long _lastTotal;

        public double? Due(long total)
        {
            var elapsed = Stopwatch.GetElapsedTime(_lastAt);
            if (elapsed < interval) return null;
            var rate = (total - _lastTotal) / elapsed.TotalSeconds;
            _lastAt = Stopwatch.GetTimestamp();
            _lastTotal = total;
            return rate;
        }
    }
}

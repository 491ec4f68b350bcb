using System.Diagnostics;
using Microsoft.Extensions.Options;
using MLNode.Engines.Hosting;
using MLNode.Protocol.Poc;

namespace MLNode.Worker.Poc;

/// <summary>
/// Runs PoC forwards one at a time (generation, jobs and synchronous requests share one model) and retries a
/// failed forward with the same nonces after a short, doubling backoff, so no nonce is lost or skipped.
/// </summary>
public sealed class PocCompute(IOptions<PocOptions> options, PocMetrics metrics, ILogger<PocCompute> logger)
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(1);
    private readonly SemaphoreSlim _model = new(1, 1);

    /// <summary>The artifacts of <paramref name="nonces"/> (none for a nonce whose hidden state was not finite).</summary>
    /// <param name="giveUpAfter">How long failures are retried before a <see cref="TimeoutException"/>; null retries until cancelled.</param>
    public async Task<IReadOnlyList<PocArtifact>> ComputeAsync(
        IPocProver prover, PocRound round, IReadOnlyList<long> nonces, TimeSpan? giveUpAfter, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        var backoff = options.Value.ComputeRetryBackoff;
        for (var failures = 1; ; failures++)
        {
            try
            {
                await _model.WaitAsync(ct);
                try
                {
                    return await prover.ComputeAsync(round, nonces, ct);
                }
                finally
                {
                    _model.Release();
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                metrics.BatchFailed();
                if (giveUpAfter is { } limit && Stopwatch.GetElapsedTime(started) >= limit)
                    throw new TimeoutException($"the PoC forward of {nonces.Count} nonces kept failing for {limit.TotalSeconds:0.#} s: {e.Message}", e);
                if (failures == 1 || failures % 10 == 0)
                    logger.LogWarning(e, "PoC forward of {Count} nonces from {First} failed ({Failures} in a row); computing the same nonces again in {Delay:0} ms",
                        nonces.Count, nonces.Count > 0 ? nonces[0] : null, failures, backoff.TotalMilliseconds);
                await Task.Delay(backoff, ct);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
        }
    }
}

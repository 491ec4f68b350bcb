using System.Threading.Channels;
using Microsoft.Extensions.Options;

namespace MLNode.Worker.Poc;

/// <summary>
/// Delivers the one-off callbacks of finished /generate jobs in the background, a few at a time, so that a slow
/// or absent receiver never holds up the next job. Bounded: when full, the oldest waiting callback is dropped
/// (counted and logged).
/// </summary>
public sealed class CallbackOutbox : BackgroundService
{
    private readonly Channel<Delivery> _deliveries;
    private readonly CallbackClient _client;
    private readonly PocOptions _options;
    private readonly PocMetrics _metrics;
    private readonly ILogger<CallbackOutbox> _logger;

    public CallbackOutbox(CallbackClient client, IOptions<PocOptions> options, PocMetrics metrics, ILogger<CallbackOutbox> logger)
    {
        (_client, _options, _metrics, _logger) = (client, options.Value, metrics, logger);
        _deliveries = Channel.CreateBounded<Delivery>(
            new BoundedChannelOptions(_options.CallbackQueueCapacity) { FullMode = BoundedChannelFullMode.DropOldest },
            Dropped);
    }

    /// <summary>Queues <c>POST {url}/{path}</c> with <paramref name="payload"/>.</summary>
    public void Post<T>(string url, string path, T payload) =>
        _deliveries.Writer.TryWrite(new Delivery(url, path, ct => _client.SendAsync(url, path, payload, ct)));

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(Enumerable.Range(0, _options.CallbackConcurrency).Select(_ => DeliverAsync(stoppingToken)));

    private async Task DeliverAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var delivery in _deliveries.Reader.ReadAllAsync(stoppingToken))
                await delivery.Send(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            if (_deliveries.Reader.TryRead(out var undelivered))
                _logger.LogWarning("Shutting down with PoC callbacks not delivered (first: {Url}/{Path})", undelivered.Url, undelivered.Path);
        }
    }

    private void Dropped(Delivery delivery)
    {
        _metrics.CallbackAbandoned(delivery.Path);
        _logger.LogWarning("PoC callback queue full ({Capacity}): dropped the oldest callback to {Url}/{Path}",
            _options.CallbackQueueCapacity, delivery.Url, delivery.Path);
    }

    private sealed record Delivery(string Url, string Path, Func<CancellationToken, Task<bool>> Send);
}

using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace MLNode.Worker.Tests.Poc;

/// <summary>
/// dapi's ML callback server in miniature, on a loopback port: records every callback it accepts with the raw
/// request target. It can start late (connection refused until then) and answer a planned series of failures.
/// </summary>
public sealed class CallbackReceiver : IAsyncDisposable
{
    /// <summary>A planned answer: hang until the caller gives up.</summary>
    public const int Hang = 0;

    private readonly ConcurrentQueue<Callback> _accepted = new();
    private readonly ConcurrentQueue<int> _failures = new();
    private WebApplication? _app;
    private int _attempts;

    public sealed record Callback(string RawTarget, JsonObject Body);

    public int Port { get; } = FreePorts.Take(1)[0];

    /// <summary>Requests that reached the receiver, failed ones included.</summary>
    public int Attempts => Volatile.Read(ref _attempts);

    public IReadOnlyList<Callback> Accepted => [.. _accepted];

    /// <summary>dapi's per-model callback base: the model id path-escaped twice (<c>Qwen%252FQwen3-0.6B</c>).</summary>
    public string UrlFor(string model) =>
        $"http://127.0.0.1:{Port}/v2/poc-batches/{Uri.EscapeDataString(Uri.EscapeDataString(model))}";

    /// <summary>Answers the next requests with these statuses (or <see cref="Hang"/>) before accepting again.</summary>
    public void FailNext(params int[] statuses)
    {
        foreach (var status in statuses)
            _failures.Enqueue(status);
    }

    public static async Task<CallbackReceiver> StartAsync()
    {
        var receiver = new CallbackReceiver();
        await receiver.ListenAsync();
        return receiver;
    }

    /// <summary>Starts listening (until then, callbacks find the port closed).</summary>
    public async Task ListenAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, Port));
        var app = builder.Build();
        app.Run(ReceiveAsync);
        await app.StartAsync();
        _app = app;
    }

    private async Task ReceiveAsync(HttpContext context)
    {
        Interlocked.Increment(ref _attempts);
        var body = (await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted))!.AsObject();
        if (_failures.TryDequeue(out var status))
        {
            if (status == Hang)
            {
                try
                {
                    await Task.Delay(Timeout.Infinite, context.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                    // the caller gave up, as intended
                }
                return;
            }
            context.Response.StatusCode = status;
            return;
        }
        _accepted.Enqueue(new Callback(context.Features.Get<IHttpRequestFeature>()!.RawTarget, body));
        context.Response.StatusCode = StatusCodes.Status200OK;
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is null) return;
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

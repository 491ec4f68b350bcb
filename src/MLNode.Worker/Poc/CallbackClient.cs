using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.Extensions.Options;
using MLNode.Protocol;

namespace MLNode.Worker.Poc;

/// <summary>
/// Posts PoC callbacks to dapi: one JSON body, a timeout per attempt, success on HTTP &lt; 400, and bounded
/// retries of the same body with a doubling backoff (1 → 2 → … ≤ 30 s by default).
/// </summary>
public sealed class CallbackClient(
    IHttpClientFactory httpClients, IOptions<PocOptions> options, PocMetrics metrics, ILogger<CallbackClient> logger)
{
    public const string HttpClientName = "poc-callbacks";

    /// <summary>
    /// <c>{url}/{path}</c> as plain text: dapi's url already carries the model id escaped twice (<c>%252F</c>)
    /// and must reach it unchanged; <see cref="Uri"/> keeps such escapes as they are.
    /// </summary>
    public static Uri Target(string url, string path) => new(url + "/" + path);

    /// <summary>True once the receiver accepted the payload; false when the last retry failed too.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled (shutdown).</exception>
    public async Task<bool> SendAsync<T>(string url, string path, T payload, CancellationToken ct)
    {
        var settings = options.Value;
        var target = Target(url, path);
        var body = JsonSerializer.SerializeToUtf8Bytes(payload, GonkaJson.Options);
        var backoff = settings.CallbackRetryBackoff;
        for (var attempt = 0; ; attempt++)
        {
            if (attempt > 0)
                metrics.CallbackRetried(path);
            var failure = await PostAsync(target, body, settings.CallbackTimeout, ct);
            if (failure is null)
            {
                metrics.CallbackSent(path);
                if (attempt > 0)
                    logger.LogInformation("Callback to {Target} delivered after {Attempts} attempts", target, attempt + 1);
                return true;
            }
            metrics.CallbackFailed(path);
            if (attempt >= settings.CallbackMaxRetries)
            {
                metrics.CallbackAbandoned(path);
                logger.LogWarning("Callback to {Target} given up after {Attempts} attempts: {Failure}", target, attempt + 1, failure);
                return false;
            }
            if (attempt == 0 || (attempt + 1) % 5 == 0)
                logger.LogWarning("Callback to {Target} failed ({Failure}); retry {Retry} of {MaxRetries} in {Delay:0.###} s",
                    target, failure, attempt + 1, settings.CallbackMaxRetries, backoff.TotalSeconds);
            await Task.Delay(backoff, ct);
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, settings.CallbackRetryMaxBackoff.Ticks));
        }
    }

    /// <summary>One attempt; null on success, otherwise why it failed.</summary>
    private async Task<string?> PostAsync(Uri target, byte[] body, TimeSpan timeout, CancellationToken ct)
    {
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(ct);
        attempt.CancelAfter(timeout);
        try
        {
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            using var response = await httpClients.CreateClient(HttpClientName).PostAsync(target, content, attempt.Token);
            return (int)response.StatusCode < 400 ? null : $"HTTP {(int)response.StatusCode}";
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return $"no answer within {timeout.TotalSeconds:0.###} s";
        }
        catch (HttpRequestException e)
        {
            return e.Message;
        }
    }
}

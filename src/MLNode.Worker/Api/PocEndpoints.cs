using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using MLNode.Protocol;
using MLNode.Protocol.Management;
using MLNode.Worker.Node;
using MLNode.Worker.Poc;

namespace MLNode.Worker.Api;

/// <summary>
/// /api/v1/inference/pow/*: the PoC v2 management routes in the reference node's fan-out shapes, answered by
/// this worker as its own single backend (listed under the inference port).
/// </summary>
public static class PocEndpoints
{
    public static void MapPoc(this IEndpointRouteBuilder app)
    {
        var pow = app.MapGroup("/api/v1/inference/pow");

        pow.MapPost("/init/generate", async (HttpRequest request, PocRunner poc, InferencePort port, CancellationToken ct) =>
        {
            var (body, error) = await RequestBody.ReadAsync<PocInitGenerateRequest>(request, ct);
            if (error is not null) return error;
            return poc.StartGeneration(body!)
                ?? Results.Json(new PocInitGenerateResponse("OK", 1, 1, [new PocBackendResult(port.Port, "OK")]), GonkaJson.Options);
        });

        pow.MapPost("/generate", async (HttpRequest request, PocRunner poc, PocJobQueue jobs, InferencePort port,
            IOptions<PocOptions> options, CancellationToken ct) =>
        {
            var settings = options.Value;
            var (body, error) = await RequestBody.ReadAsync<PocGenerateRequest>(request, ct, maxBytes: settings.MaxGenerateRequestBytes);
            if (error is not null) return error;
            var (prover, round, refusal) = poc.Prepare(body!.Params, body.BlockHash, body.PublicKey, body.PocStrongerRng);
            if (refusal is not null) return refusal;
            if (!body.ValidationMatchesNonces)
                return RequestBody.Detail(StatusCodes.Status400BadRequest, "validation.artifacts nonces must match nonces field");

            var work = PocGenerateWork.For(body, prover!, round!, settings.BatchSizeDefault);
            if (body.Wait)
            {
                var now = new PocJob(work, callbackUrl: null);
                await jobs.RunNowAsync(now, ct);
                return now.Status == PocJob.Completed
                    ? Results.Json(now.Result, GonkaJson.Options)
                    : RequestBody.Detail(StatusCodes.Status503ServiceUnavailable, now.Error ?? $"generation {now.Status}");
            }

            var job = new PocJob(work, body.Url);
            return jobs.TryEnqueue(job) is { } full
                ? RequestBody.Detail(StatusCodes.Status429TooManyRequests, full)
                : Results.Json(new PocQueuedResponse(PocJob.Queued, RequestId(port, job.Id), body.Nonces.Count), GonkaJson.Options);
        });

        pow.MapGet("/generate/{requestId}", (string requestId, PocJobQueue jobs, InferencePort port) =>
        {
            var separator = requestId.IndexOf(':');
            if (separator < 0)
                return RequestBody.Detail(StatusCodes.Status400BadRequest, "Invalid request_id format (expected port:uuid)");
            if (!int.TryParse(requestId.AsSpan(0, separator), NumberStyles.None, CultureInfo.InvariantCulture, out var idPort))
                return RequestBody.Detail(StatusCodes.Status400BadRequest, "Invalid port in request_id");
            if (idPort != port.Port || !Guid.TryParse(requestId.AsSpan(separator + 1), out var id) || jobs.Find(id) is not { } job)
                return RequestBody.Detail(StatusCodes.Status404NotFound, "Request not found");

            // The result as the job recorded it, under the id the caller knows.
            var response = job.Result is { } result
                ? JsonSerializer.SerializeToNode(result, GonkaJson.Options)!.AsObject()
                : new JsonObject { ["status"] = job.Status };
            response["request_id"] = requestId;
            if (job.Error is { } failure)
                response["error"] = failure;
            return Results.Json(response, GonkaJson.Options);
        });

        pow.MapGet("/status", (PocRunner poc) => Results.Json(poc.Status(), GonkaJson.Options));

        pow.MapPost("/stop", async (PocRunner poc, NodeController node, InferencePort port) =>
        {
            if (node.Model is null)
                return Results.Json(new StatusMessage("OK", "No backends to stop"), GonkaJson.Options);
            await poc.StopAsync();
            return Results.Json(new PocStopResponse("OK", [new PocBackendResult(port.Port, "stopped")]), GonkaJson.Options);
        });
    }

    private static string RequestId(InferencePort port, Guid id) => $"{port.Port}:{id}";
}

using MLNode.Protocol;
using MLNode.Protocol.Management;
using MLNode.Runtime.Hub;

namespace MLNode.Worker.Api;

/// <summary>/api/v1/models/*: the HF cache as dapi manages it (status, background download, list, space, delete).</summary>
public static class ModelCacheEndpoints
{
    public static void MapModelCache(this IEndpointRouteBuilder app)
    {
        var models = app.MapGroup("/api/v1/models");

        models.MapPost("/status", async (HttpRequest request, ModelDownloads downloads, CancellationToken ct) =>
        {
            var (body, error) = await RequestBody.ReadAsync<HfModelRef>(request, ct);
            return error ?? Results.Json(downloads.Status(body!), GonkaJson.Options);
        });

        models.MapPost("/download", async (HttpRequest request, ModelDownloads downloads, CancellationToken ct) =>
        {
            var (body, error) = await RequestBody.ReadAsync<HfModelRef>(request, ct);
            if (error is not null) return error;
            return downloads.Start(body!) switch
            {
                DownloadStartResult.Accepted accepted => Results.Json(accepted.Response, GonkaJson.Options, statusCode: StatusCodes.Status202Accepted),
                DownloadStartResult.AlreadyDownloading busy => RequestBody.Detail(StatusCodes.Status409Conflict, busy.Detail),
                DownloadStartResult.TooManyDownloads full => RequestBody.Detail(StatusCodes.Status429TooManyRequests, full.Detail),
                var other => throw new InvalidOperationException($"unexpected download result {other}"),
            };
        });

        models.MapDelete("", async (HttpRequest request, ModelDownloads downloads, CancellationToken ct) =>
        {
            var (body, error) = await RequestBody.ReadAsync<HfModelRef>(request, ct);
            if (error is not null) return error;
            return await downloads.DeleteAsync(body!, ct) switch
            {
                DeleteResult.Removed removed => Results.Json(removed.Response, GonkaJson.Options),
                DeleteResult.NotFound missing => RequestBody.Detail(StatusCodes.Status404NotFound, missing.Detail),
                var other => throw new InvalidOperationException($"unexpected delete result {other}"),
            };
        });

        models.MapGet("/list", (HubCache cache) => Results.Json(new ModelListResponse(cache.List()), GonkaJson.Options));

        models.MapGet("/space", (HubCache cache) => Results.Json(cache.Space(), GonkaJson.Options));
    }
}

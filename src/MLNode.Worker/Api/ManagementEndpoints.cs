using MLNode.Protocol;
using MLNode.Protocol.Management;
using MLNode.Runtime.Torch;
using MLNode.Worker.Node;
using MLNode.Worker.Poc;

namespace MLNode.Worker.Api;

/// <summary>/api/v1/state, /stop and /inference/*: the node state machine as dapi drives it.</summary>
public static class ManagementEndpoints
{
    public static void MapManagement(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1");

        api.MapGet("/state", (NodeController node, PocGate poc, TorchRuntime runtime) =>
        {
            var serving = node.State == NodeState.Inference;
            return Results.Json(new StateResponse(
                node.State,
                WorkerVersion.Value,
                serving ? poc.Status : null,
                serving ? node.Model!.Failure is null : null,
                serving ? node.Model!.Card.Id : null,
                runtime.Info), GonkaJson.Options);
        });

        api.MapPost("/stop", async (NodeController node, PocRunner poc) =>
        {
            await poc.StopAsync();
            await node.DownAsync();
            return Results.Json(new StatusOk(), GonkaJson.Options);
        });

        var inference = api.MapGroup("/inference");

        inference.MapPost("/up", async (HttpRequest request, NodeController node, CancellationToken ct) =>
        {
            var (body, error) = await RequestBody.ReadAsync<InferenceUpRequest>(request, ct);
            if (error is not null) return error;
            var (refusal, message, loaded) = node.StartUp(body!);
            if (refusal != UpRefusal.None) return Refused(refusal, message);
            try
            {
                // The start continues if this caller goes away; dapi polls /state afterwards.
                await loaded.WaitAsync(ct);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                return RequestBody.Detail(StatusCodes.Status500InternalServerError, e.Message);
            }
            return Results.Json(new StatusOk(), GonkaJson.Options);
        });

        inference.MapPost("/up/async", async (HttpRequest request, NodeController node, CancellationToken ct) =>
        {
            var (body, error) = await RequestBody.ReadAsync<InferenceUpRequest>(request, ct);
            if (error is not null) return error;
            var (refusal, message, _) = node.StartUp(body!);
            return refusal != UpRefusal.None
                ? Refused(refusal, message)
                : Results.Json(new UpAsyncResponse("starting", "Inference startup initiated in background"), GonkaJson.Options);
        });

        inference.MapGet("/up/status", (NodeController node) => Results.Json(node.GetUpStatus(), GonkaJson.Options));

        inference.MapPost("/down", async (NodeController node, PocRunner poc) =>
        {
            await poc.StopAsync();
            await node.DownAsync();
            return Results.Json(new StatusOk(), GonkaJson.Options);
        });
    }

    private static IResult Refused(UpRefusal refusal, string message) => refusal switch
    {
        UpRefusal.AlreadyRunning => RequestBody.Detail(StatusCodes.Status409Conflict, message),
        UpRefusal.UnknownModel or UpRefusal.NotServable => RequestBody.Invalid(new FieldError("body.model", message)),
        _ => RequestBody.Invalid(new FieldError("body.additional_args", message)),
    };
}

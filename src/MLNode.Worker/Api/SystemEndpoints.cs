using MLNode.Protocol;
using MLNode.Protocol.Management;
using MLNode.Runtime.Gpu;
using MLNode.Worker.Node;

namespace MLNode.Worker.Api;

/// <summary>GPU inventory, health probes and the OpenAI model list.</summary>
public static class SystemEndpoints
{
    public static void MapSystem(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/gpu/devices", (IGpuInventory gpus) =>
        {
            var devices = gpus.Devices();
            return Results.Json(new GpuDevicesResponse(devices, devices.Count), GonkaJson.Options);
        });

        app.MapGet("/api/v1/gpu/driver", (IGpuInventory gpus) => gpus.Driver() is { } driver
            ? Results.Json(driver, GonkaJson.Options)
            : RequestBody.Detail(StatusCodes.Status503ServiceUnavailable, "NVML is not available on this machine (no NVIDIA driver)"));

        app.MapGet("/health", Health);
        app.MapGet("/livez", Health);

        app.MapGet("/readyz", (NodeController node) =>
        {
            // Ready unless a model is supposed to serve and does not: a start in progress is not ready.
            var ready = !node.IsStarting;
            return Results.Json(new ReadyResponse(ready), GonkaJson.Options, statusCode: ready ? 200 : 503);
        });

        app.MapGet("/v1/models", (NodeController node) =>
        {
            if (node.Model is not { } model) return NoBackend();
            var card = model.Card;
            var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            return Results.Json(new OpenAiModelList([new OpenAiModel(card.Id, created, "mlnode", card.Id, card.Limits.MaxModelLen)]), GonkaJson.Options);
        });
    }

    /// <summary>What the reference answers when no engine serves: its proxy has no healthy vLLM backend.</summary>
    public static IResult NoBackend() => RequestBody.Detail(StatusCodes.Status503ServiceUnavailable, "No vLLM backend available");

    private static IResult Health(HttpContext context, NodeController node, IGpuInventory gpus, InferencePort inferencePort)
    {
        if (inferencePort.Matches(context))
        {
            // On the OpenAI port /health is the engine's own probe (vLLM: 200, empty body).
            if (node.Model is null) return NoBackend();
            return node.Model.Failure is { } failure ? RequestBody.Detail(StatusCodes.Status503ServiceUnavailable, failure) : Results.Ok();
        }
        var devices = gpus.Devices();
        var starting = node.IsStarting;
        var managers = new Dictionary<string, ManagerHealth>
        {
            ["pow"] = new(false, true),
            ["inference"] = new(node.State == NodeState.Inference || starting, true),
            ["train"] = new(false, true),
        };
        return Results.Json(new HealthResponse("healthy", node.State, new GpuHealth(devices.Count > 0, devices.Count, devices), managers), GonkaJson.Options);
    }
}

using Microsoft.Extensions.Options;
using MLNode.Engines.Hosting;
using MLNode.Protocol.Management;
using MLNode.Runtime.Registry;
using MLNode.Worker.Node;

namespace MLNode.Worker.Hosting;

/// <summary>Loads the configured model (or, out of the box, the demo LLM) once the listeners are up.</summary>
public sealed class StartupLoader(
    NodeController node, ModelRegistry registry, ModelHost host, IOptions<WorkerOptions> options, bool defaultSetup,
    ILogger<StartupLoader> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var id = options.Value.Load;
        if (string.IsNullOrEmpty(id) && defaultSetup)
        {
            id = registry.Models.FirstOrDefault(m => m.Source == ModelSource.Demo && m.Modality == Modality.Llm && host.CanServe(m))?.Id;
            if (id is null) return;
            logger.LogInformation("No model chosen: serving the built-in demo model {Model} (random weights; its output is meaningless)", id);
        }
        if (string.IsNullOrEmpty(id)) return;
        var (refusal, message, loaded) = node.StartUp(new InferenceUpRequest(id));
        if (refusal != UpRefusal.None)
        {
            logger.LogError("Cannot load {Model} at start: {Message}", id, message);
            return;
        }
        try
        {
            await loaded.WaitAsync(stoppingToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Already logged by the controller; the node stays up in STOPPED so dapi can retry.
        }
    }
}

using Prometheus;

namespace MLNode.Worker.Node;

/// <summary>Node-level Prometheus metrics; HTTP request counts and latency come from prometheus-net's middleware.</summary>
public sealed class WorkerMetrics
{
    private static readonly Gauge State = Metrics.CreateGauge("mlnode_node_state", "1 for the state the node is in.", "state");
    private static readonly Gauge Loaded = Metrics.CreateGauge("mlnode_model_loaded", "1 while the labelled model serves.", "model");
    private static readonly Gauge LoadSeconds = Metrics.CreateGauge("mlnode_model_load_seconds", "Wall time of the last model load (folder, verification, weights).", "model");
    private static readonly Counter Loads = Metrics.CreateCounter("mlnode_model_loads_total", "Model loads by outcome.", "outcome");

    /// <summary>The node starts STOPPED; loads and unloads move the state gauge, so a scrape reads it without asking the node.</summary>
    public WorkerMetrics() => SetState("STOPPED");

    public void ModelLoaded(string model, TimeSpan took)
    {
        SetState("INFERENCE");
        Loaded.WithLabels(model).Set(1);
        LoadSeconds.WithLabels(model).Set(took.TotalSeconds);
        Loads.WithLabels("completed").Inc();
    }

    public void ModelLoadFailed() => Loads.WithLabels("failed").Inc();

    public void ModelUnloaded()
    {
        SetState("STOPPED");
        foreach (var labels in Loaded.GetAllLabelValues().ToList())
            Loaded.RemoveLabelled(labels);
    }

    private static void SetState(string state)
    {
        foreach (var s in new[] { "STOPPED", "INFERENCE" })
            State.WithLabels(s).Set(s == state ? 1 : 0);
    }
}

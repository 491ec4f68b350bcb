using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using MLNode.Engines.Hosting;
using MLNode.Runtime.Registry;
using Microsoft.AspNetCore.Builder;
using MLNode.Worker.Hosting;

// A worker's metrics live on prometheus-net's process-wide registry, as one worker per process does in
// production: workers of tests running side by side would overwrite each other's node-state gauge.
[assembly: CollectionBehavior(CollectionBehavior.CollectionPerAssembly)]

namespace MLNode.Worker.Tests;

/// <summary>
/// A real worker on two free loopback ports, with a registry written for the test. Requests travel
/// over TCP exactly as dapi's would, so port separation and status codes are tested on the wire.
/// </summary>
public sealed class WorkerServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private WorkerServer(WebApplication app, int port, int inferencePort, string folder)
    {
        _app = app;
        Folder = folder;
        Management = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        Inference = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{inferencePort}") };
    }

    public HttpClient Management { get; }
    public HttpClient Inference { get; }
    public string Folder { get; }
    public IServiceProvider Services => _app.Services;

    /// <summary>Starts a worker whose registry is <paramref name="registryJson"/> ("{folder}" expands to a temp folder).</summary>
    public static async Task<WorkerServer> StartAsync(Func<string, string> registryJson, Action<IServiceCollection>? services = null, params string[] extraArgs)
    {
        var folder = Directory.CreateTempSubdirectory("mlnode-worker-").FullName;
        var registry = Path.Combine(folder, "models.json");
        await File.WriteAllTextAsync(registry, registryJson(folder));
        var ports = FreePorts.Take(2);
        var (port, inferencePort) = (ports[0], ports[1]);
        // Video outputs under the server's folder too (a later --Video:OutputDir in extraArgs wins), so disposing removes them.
        string[] args = ["--models", registry, "--port", $"{port}", "--inference-port", $"{inferencePort}", "--host", "127.0.0.1", "--cache-dir", Path.Combine(folder, "cache"),
            "--Video:OutputDir", Path.Combine(folder, "videos"), .. extraArgs];
        var app = WorkerApp.Build(args, b => services?.Invoke(b.Services));
        await app.StartAsync();
        return new WorkerServer(app, port, inferencePort, folder);
    }

    /// <summary>Writes a small model folder (config + weights file) and returns its files with their SHA-256.</summary>
    public static IReadOnlyList<ModelFile> WriteModelFolder(string folder)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), """{"model_type":"qwen3","hidden_size":8}""");
        File.WriteAllBytes(Path.Combine(folder, "model.safetensors"), Enumerable.Range(0, 4096).Select(i => (byte)i).ToArray());
        return new[] { "config.json", "model.safetensors" }
            .Select(f => new ModelFile(f, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(folder, f))))))
            .ToList();
    }

    public async ValueTask DisposeAsync()
    {
        Management.Dispose();
        Inference.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        Directory.Delete(Folder, recursive: true);
    }
}

/// <summary>The registry the host tests serve: one LLM from a local folder whose files are listed with their SHA-256.</summary>
public static class TestRegistry
{
    public const string ModelId = "Qwen/Qwen3-0.6B";

    public static string Json(string folder, Func<IReadOnlyList<ModelFile>, IReadOnlyList<ModelFile>>? tamper = null)
    {
        var files = WorkerServer.WriteModelFolder(Path.Combine(folder, "model"));
        files = tamper?.Invoke(files) ?? files;
        var entry = new JsonObject
        {
            ["id"] = ModelId,
            ["path"] = "model",
            ["modality"] = "llm",
            ["architecture"] = "qwen3",
            ["dtype"] = "bfloat16",
            ["files"] = new JsonArray(files.Select(f => (JsonNode)new JsonObject { ["path"] = f.Path, ["sha256"] = f.Sha256 }).ToArray()),
            ["limits"] = new JsonObject { ["max_model_len"] = 40960, ["max_batch"] = 64 },
            ["validation_threshold"] = 0.94,
            ["poc"] = JsonNode.Parse("""{"seq_len":1024,"k_dim":12,"stat_test":{"dist_threshold":0.2,"p_mismatch":0.1,"p_value_threshold":0.05}}"""),
            ["pricing"] = new JsonObject { ["units_of_compute_per_token"] = 100 },
        };
        return new JsonObject { ["models"] = new JsonArray(entry) }.ToJsonString();
    }
}

/// <summary>
/// Stands in for an engine in host tests: "loads" by reading the folder's config.json, and can be made
/// slow or failing to exercise the state machine. Engines have their own tests.
/// </summary>
public sealed class ScriptedEngine : IExecutorFactory
{
    public TimeSpan LoadDelay { get; set; }
    public int Loads { get; private set; }

    /// <summary>The PoC forward the loaded executor offers; none by default.</summary>
    public IPocProver? Prover { get; init; }

    /// <summary>What the loaded executor reports as <see cref="IModelExecutor.Failure"/>, read at each probe.</summary>
    public string? Failure { get; set; }

    public bool Supports(Modality modality, string architecture) => modality == Modality.Llm;

    public async Task<IModelExecutor> LoadAsync(ModelLoadRequest request, CancellationToken ct)
    {
        await Task.Delay(LoadDelay, ct);
        _ = await File.ReadAllTextAsync(Path.Combine(request.Folder, "config.json"), ct);
        Loads++;
        return new Executor(new ModelCard(request.Entry.Id, request.Entry.Modality, request.Entry.Architecture, request.Entry.Dtype,
            "cpu", request.Folder, request.Entry.Limits, 0, request.Entry.Pricing), Prover, this);
    }

    private sealed class Executor(ModelCard card, IPocProver? poc, ScriptedEngine engine) : IModelExecutor
    {
        public ModelCard Card { get; } = card;
        public IPocProver? Poc { get; } = poc;
        public string? Failure => engine.Failure;
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

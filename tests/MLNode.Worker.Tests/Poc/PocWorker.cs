using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using MLNode.Engines.Hosting;
using MLNode.Protocol.Poc;

namespace MLNode.Worker.Tests.Poc;

/// <summary>
/// A real worker serving the test model with a <see cref="DeterministicProver"/>, callbacks paced for tests
/// (100 ms interval, 50–200 ms backoff), and the request bodies of the spec's wire transcript.
/// </summary>
public sealed class PocWorker : IAsyncDisposable
{
    public const string ModelId = TestRegistry.ModelId;
    public const string BlockHash = "9F3A5C0D1E2B3A4958675A6B7C8D9E0F1A2B3C4D5E6F708192A3B4C5D6E7F809";
    public const string PublicKey = "02ab5e9c1d2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c";
    public const string OtherKey = "03cd5e9c1d2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c";
    public const long BlockHeight = 1234560;
    public const int SeqLen = 8;

    private static readonly string[] TestPace =
    [
        "--Poc:CallbackIntervalSec", "0.1",
        "--Poc:CallbackRetryBackoffSec", "0.05",
        "--Poc:CallbackRetryMaxBackoffSec", "0.2",
        "--Poc:CallbackTimeoutSec", "0.5",
        "--Poc:CallbackMaxRetries", "40",
        "--Poc:ProgressLogIntervalSec", "0.2",
    ];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private PocWorker(WorkerServer server, DeterministicProver prover)
    {
        Server = server;
        Prover = prover;
    }

    public WorkerServer Server { get; }
    public DeterministicProver Prover { get; }
    public HttpClient Management => Server.Management;
    public HttpClient Inference => Server.Inference;

    /// <summary>The port this worker lists as its backend, and puts in front of request ids.</summary>
    public int BackendPort => Server.Inference.BaseAddress!.Port;

    /// <summary>Starts a worker; with <paramref name="load"/> it serves the test model, with <paramref name="poc"/> that model can prove.</summary>
    public static async Task<PocWorker> StartAsync(bool load = true, bool poc = true, params string[] settings)
    {
        var prover = new DeterministicProver();
        var engine = new ScriptedEngine { Prover = poc ? prover : null };
        var server = await WorkerServer.StartAsync(f => TestRegistry.Json(f), s => s.AddSingleton<IExecutorFactory>(engine), [.. TestPace, .. settings]);
        var worker = new PocWorker(server, prover);
        if (load)
        {
            var (status, _) = await worker.Send(HttpMethod.Post, "/api/v1/inference/up", $$"""{"model":"{{ModelId}}"}""");
            Assert.Equal(HttpStatusCode.OK, status);
        }
        return worker;
    }

    /// <summary>The round of the test requests, as the worker builds it (hidden size of the prover).</summary>
    public static PocRound Round(string publicKey = PublicKey, bool strongerRng = false) =>
        new(BlockHash, publicKey, SeqLen, new DeterministicProver().HiddenSize, PocRound.DefaultKDim, strongerRng);

    /// <summary>The init/generate body of the transcript (node 1 of 2 ⇒ nonces 1, 3, 5, …).</summary>
    public static JsonObject InitBody(string? url, int? batchSize = null)
    {
        var body = new JsonObject
        {
            ["block_hash"] = BlockHash,
            ["block_height"] = BlockHeight,
            ["public_key"] = PublicKey,
            ["node_id"] = 1,
            ["node_count"] = 2,
            ["params"] = new JsonObject { ["model"] = ModelId, ["seq_len"] = SeqLen },
            ["url"] = url,
            ["poc_stronger_rng"] = true,
        };
        if (batchSize is not null) body["batch_size"] = batchSize;
        return body;
    }

    /// <summary>A /generate body for <paramref name="nonces"/> of <see cref="OtherKey"/>'s round.</summary>
    public static JsonObject GenerateBody(IEnumerable<long> nonces, bool wait, string? url = null, IEnumerable<PocArtifact>? validation = null,
        JsonObject? statTest = null, int batchSize = 4)
    {
        var body = new JsonObject
        {
            ["block_hash"] = BlockHash,
            ["block_height"] = BlockHeight,
            ["public_key"] = OtherKey,
            ["node_id"] = 1,
            ["node_count"] = 1,
            ["nonces"] = new JsonArray([.. nonces.Select(n => (JsonNode)n)]),
            ["params"] = new JsonObject { ["model"] = ModelId, ["seq_len"] = SeqLen },
            ["batch_size"] = batchSize,
            ["wait"] = wait,
            ["url"] = url,
        };
        if (validation is not null)
        {
            body["validation"] = new JsonObject
            {
                ["artifacts"] = new JsonArray([.. validation.Select(a => (JsonNode)new JsonObject { ["nonce"] = a.Nonce, ["vector_b64"] = a.VectorB64 })]),
            };
        }
        if (statTest is not null) body["stat_test"] = statTest;
        return body;
    }

    public Task<(HttpStatusCode Status, JsonNode? Body)> Send(HttpMethod method, string path, JsonNode? json) =>
        JsonHttp.Send(Management, method, path, json?.ToJsonString());

    public Task<(HttpStatusCode Status, JsonNode? Body)> Send(HttpMethod method, string path, string? json = null) =>
        JsonHttp.Send(Management, method, path, json);


    /// <summary>/api/v1/state's poc_status.</summary>
    public async Task<string?> PocStatus() => (string?)(await Send(HttpMethod.Get, "/api/v1/state")).Body!["poc_status"];

    /// <summary>Polls until <paramref name="condition"/> holds; fails after <paramref name="seconds"/>.</summary>
    public static async Task Until(Func<Task<bool>> condition, string what, double seconds = 10)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not within {seconds} s: {what}");
            await Task.Delay(20, Ct);
        }
    }

    public static Task Until(Func<bool> condition, string what, double seconds = 10) =>
        Until(() => Task.FromResult(condition()), what, seconds);

    public ValueTask DisposeAsync() => Server.DisposeAsync();
}

using System.Net;
using System.Text.Json.Nodes;
using static MLNode.Worker.Tests.Poc.PocWorker;

namespace MLNode.Worker.Tests.Poc;

/// <summary>Continuous generation: init/generate, status, the inference gate, /generated callbacks and stop.</summary>
public sealed class GenerationTests
{
    private const string Refusal =
        """{"error":{"message":"PoC generation is active. Inference requests are temporarily unavailable.","type":"service_unavailable","code":503}}""";

    private static readonly string[] InferencePaths =
        ["/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/audio/transcriptions", "/v1/audio/translations"];

    [Fact]
    public async Task Generation_follows_the_wire_transcript_from_init_to_stop()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var poc = await StartAsync();
        var port = poc.BackendPort;

        var (status, body) = await poc.Send(HttpMethod.Get, "/api/v1/inference/pow/status");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal($$"""{"status":"IDLE","backends":[{"port":{{port}},"status":"IDLE","config":null,"stats":null}]}""", body!.ToJsonString());

        // The transcript's body: no batch_size (⇒ 32), no k_dim (⇒ 12), the stronger RNG, a doubly escaped model id in the url.
        (status, body) = await poc.Send(HttpMethod.Post, "/api/v1/inference/pow/init/generate", InitBody(receiver.UrlFor(ModelId)));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal($$"""{"status":"OK","backends":1,"n_groups":1,"results":[{"port":{{port}},"status":"OK"}],"errors":null}""", body!.ToJsonString());
        Assert.Equal("GENERATING", await poc.PocStatus());

        // Inference is refused on both ports while generating; a second round is a conflict.
        foreach (var client in new[] { poc.Management, poc.Inference })
        {
            foreach (var path in InferencePaths)
            {
                var (chat, refusal) = await JsonHttp.Send(client, HttpMethod.Post, path, """{"model":"Qwen/Qwen3-0.6B","messages":[]}""");
                Assert.Equal(HttpStatusCode.ServiceUnavailable, chat);
                Assert.Equal(Refusal, refusal!.ToJsonString());
            }
        }
        (status, body) = await poc.Send(HttpMethod.Post, "/api/v1/inference/pow/init/generate", InitBody(receiver.UrlFor(ModelId)));
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Equal("""{"detail":"Already generating"}""", body!.ToJsonString());

        await Until(() => receiver.Accepted.Count >= 2, "two /generated callbacks");
        (_, body) = await poc.Send(HttpMethod.Get, "/api/v1/inference/pow/status");
        Assert.Equal("GENERATING", (string?)body!["status"]);
        var backend = body["backends"]![0]!;
        Assert.Equal("GENERATING", (string?)backend["status"]);
        Assert.Equal(
            $$"""{"block_hash":"{{BlockHash}}","block_height":{{BlockHeight}},"public_key":"{{PublicKey}}","node_id":1,"node_count":2,"group_id":0,"n_groups":1,"seq_len":{{SeqLen}},"k_dim":12}""",
            backend["config"]!.ToJsonString());
        Assert.True((long)backend["stats"]!["total_processed"]! > 0);
        Assert.True((double)backend["stats"]!["nonces_per_second"]! > 0);

        var first = receiver.Accepted[0];
        Assert.Equal("/v2/poc-batches/Qwen%252FQwen3-0.6B/generated", first.RawTarget);
        Assert.Equal(["public_key", "block_hash", "block_height", "node_id", "artifacts", "encoding"], first.Body.Select(p => p.Key));
        Assert.Equal(PublicKey, (string?)first.Body["public_key"]);
        Assert.Equal(BlockHash, (string?)first.Body["block_hash"]);
        Assert.Equal(BlockHeight, (long)first.Body["block_height"]!);
        Assert.Equal(1, (int)first.Body["node_id"]!);
        Assert.Equal("""{"dtype":"f16","k_dim":12,"endian":"le"}""", first.Body["encoding"]!.ToJsonString());
        var artifact = first.Body["artifacts"]![0]!.AsObject();
        Assert.Equal(["nonce", "vector_b64"], artifact.Select(p => p.Key));
        Assert.Equal(1, (long)artifact["nonce"]!);
        var round = Round(strongerRng: true);
        foreach (var a in first.Body["artifacts"]!.AsArray().Take(5))
            Assert.Equal(DeterministicProver.Artifact(round, (long)a!["nonce"]!).VectorB64, (string?)a["vector_b64"]);

        (status, body) = await poc.Send(HttpMethod.Post, "/api/v1/inference/pow/stop", "{}");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal($$"""{"status":"OK","results":[{"port":{{port}},"status":"stopped"}],"errors":null}""", body!.ToJsonString());
        Assert.Equal("IDLE", await poc.PocStatus());
        (_, body) = await poc.Send(HttpMethod.Get, "/api/v1/inference/pow/status");
        Assert.Equal($$"""{"status":"IDLE","backends":[{"port":{{port}},"status":"IDLE","config":null,"stats":null}]}""", body!.ToJsonString());
        // The gate is open again: the request reaches the chat endpoint, which rejects the empty body itself.
        var (open, _) = await JsonHttp.Send(poc.Inference, HttpMethod.Post, "/v1/chat/completions", "{}");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, open);

        // Everything computed before the stop is delivered, exactly once: node 1 of 2 gets 1, 3, 5, … without gaps.
        var computed = poc.Prover.Computed;
        Assert.Equal(Enumerable.Range(0, computed.Count).Select(x => 1 + 2L * x), computed);
        await Until(() => Delivered(receiver).Count == computed.Count, "every computed nonce delivered");
        Assert.Equal(computed, Delivered(receiver));

        var metrics = await poc.Management.GetStringAsync("/metrics", TestContext.Current.CancellationToken);
        Assert.Contains("mlnode_poc_nonces_total ", metrics);
        Assert.Contains("mlnode_poc_nonces_per_second ", metrics);
        Assert.Contains("mlnode_poc_callbacks_sent_total{path=\"generated\"}", metrics);
        Assert.Contains("mlnode_poc_buffered_artifacts ", metrics);
    }

    [Fact]
    public async Task Receiver_outage_loses_and_repeats_no_artifact_and_generation_goes_on()
    {
        await using var receiver = new CallbackReceiver(); // not listening yet: connection refused
        await using var poc = await StartAsync();
        poc.Prover.FailNext(2); // the first forward fails twice, then the same nonces are computed again

        var (status, _) = await poc.Send(HttpMethod.Post, "/api/v1/inference/pow/init/generate", InitBody(receiver.UrlFor(ModelId), batchSize: 4));
        Assert.Equal(HttpStatusCode.OK, status);
        await Task.Delay(600, TestContext.Current.CancellationToken);
        var duringOutage = poc.Prover.Computed.Count;
        Assert.True(duringOutage >= 40, $"generation stalled during the outage ({duringOutage} nonces)");

        // The receiver comes up, answers once too slowly (past the 0.5 s timeout), twice with errors, then accepts.
        receiver.FailNext(CallbackReceiver.Hang, 500, 503);
        await receiver.ListenAsync();
        await Until(() => receiver.Accepted.Count >= 2, "deliveries after the outage");
        Assert.True(receiver.Attempts >= 5);
        Assert.True(poc.Prover.Computed.Count > duringOutage);

        (status, _) = await poc.Send(HttpMethod.Post, "/api/v1/inference/pow/stop");
        Assert.Equal(HttpStatusCode.OK, status);
        var computed = poc.Prover.Computed;
        Assert.Equal(Enumerable.Range(0, computed.Count).Select(x => 1 + 2L * x), computed);
        await Until(() => Delivered(receiver).Count >= computed.Count, "every computed nonce delivered");
        Assert.Equal(computed, Delivered(receiver));

        var calls = poc.Prover.Calls;
        Assert.Equal([1L, 3, 5, 7], calls[0]);
        Assert.Equal(calls[0], calls[1]);
        Assert.Equal(calls[0], calls[2]);
        Assert.Equal([9L, 11, 13, 15], calls[3]);
        var metrics = await poc.Management.GetStringAsync("/metrics", TestContext.Current.CancellationToken);
        Assert.Contains("mlnode_poc_callbacks_retried_total{path=\"generated\"}", metrics);
        Assert.Contains("mlnode_poc_callbacks_failed_total{path=\"generated\"}", metrics);
        Assert.Contains("mlnode_poc_batch_failures_total ", metrics);
    }

    [Fact]
    public async Task Requests_that_cannot_run_are_refused_like_the_reference()
    {
        await using (var idle = await StartAsync(load: false))
        {
            var (status, body) = await idle.Send(HttpMethod.Post, "/api/v1/inference/pow/init/generate", InitBody(null));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
            Assert.Equal("""{"detail":"No vLLM backend available"}""", body!.ToJsonString());
            (status, body) = await idle.Send(HttpMethod.Get, "/api/v1/inference/pow/status");
            Assert.Equal("""{"status":"NO_BACKENDS","backends":[]}""", body!.ToJsonString());
            (status, body) = await idle.Send(HttpMethod.Post, "/api/v1/inference/pow/stop", "{}");
            Assert.Equal("""{"status":"OK","message":"No backends to stop"}""", body!.ToJsonString());
        }

        await using var noPoc = await StartAsync(poc: false);
        var (refused, detail) = await noPoc.Send(HttpMethod.Post, "/api/v1/inference/pow/init/generate", InitBody(null));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused);
        Assert.Contains("no PoC v2 forward", (string?)detail!["detail"]);
        Assert.Equal("IDLE", await noPoc.PocStatus());
    }

    private static readonly (string Patch, string Field)[] BadInitBodies =
    [
        // params is extra="forbid" in the reference: an unknown field there names itself.
        ("""{"params":{"model":"Qwen/Qwen3-0.6B","seq_len":8,"max_tokens":5}}""", "body.params.max_tokens"),
        ("""{"params":{"model":"Qwen/Qwen3-0.6B"}}""", "body.params.seq_len"),
        ("""{"params":{"model":"Qwen/Qwen3-0.6B","seq_len":8,"k_dim":0}}""", "body.params.k_dim"),
        ("""{"params":{"model":"Qwen/Qwen3-0.6B","seq_len":8,"k_dim":17}}""", "body.params.k_dim"),
        ("""{"params":{"model":"Qwen/Qwen3-0.6B","seq_len":99999}}""", "body.params.seq_len"),
        ("""{"node_count":0}""", "body.node_count"),
        ("""{"node_id":-1}""", "body.node_id"),
        ("""{"batch_size":0}""", "body.batch_size"),
        ("""{"block_hash":null}""", "body.block_hash"),
        ("""{"url":"api:9100/v2"}""", "body.url"),
    ];

    [Fact]
    public async Task Params_are_checked_like_the_reference()
    {
        await using var poc = await StartAsync();
        const string path = "/api/v1/inference/pow/init/generate";
        foreach (var (patch, field) in BadInitBodies)
        {
            var body = InitBody(null);
            foreach (var (key, value) in JsonNode.Parse(patch)!.AsObject())
                body[key] = value?.DeepClone();
            var (status, answer) = await poc.Send(HttpMethod.Post, path, body);
            Assert.True(status == HttpStatusCode.UnprocessableEntity, $"{patch}: {status} {answer}");
            Assert.Contains(field, answer!.ToJsonString());
        }

        var mismatch = InitBody(null);
        mismatch["params"]!["model"] = "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8";
        var (conflict, detail) = await poc.Send(HttpMethod.Post, path, mismatch);
        Assert.Equal(HttpStatusCode.Conflict, conflict);
        Assert.Equal("params mismatch", (string?)detail!["detail"]!["error"]);
        Assert.Equal("Qwen/Qwen3-235B-A22B-Instruct-2507-FP8", (string?)detail["detail"]!["requested"]!["model"]);
        Assert.Equal(ModelId, (string?)detail["detail"]!["deployed"]!["model"]![0]);
        Assert.Equal("IDLE", await poc.PocStatus());

        // Unknown top-level fields are ignored as pydantic does (the ML node itself sends group_id/n_groups to vLLM).
        var extra = InitBody(null);
        extra["group_id"] = 0;
        extra["n_groups"] = 1;
        var (ok, _) = await poc.Send(HttpMethod.Post, path, extra);
        Assert.Equal(HttpStatusCode.OK, ok);
        Assert.Equal("GENERATING", await poc.PocStatus());
    }

    /// <summary>Every nonce the receiver accepted, in order of arrival.</summary>
    private static List<long> Delivered(CallbackReceiver receiver) =>
        [.. receiver.Accepted.SelectMany(c => c.Body["artifacts"]!.AsArray().Select(a => (long)a!["nonce"]!))];
}

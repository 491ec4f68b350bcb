using System.Net;
using System.Text.Json.Nodes;
using MLNode.Protocol.Poc;
using static MLNode.Worker.Tests.Poc.PocWorker;

namespace MLNode.Worker.Tests.Poc;

/// <summary>/generate: synchronous and queued jobs, validation and its fraud test, request ids, the queue cap.</summary>
public sealed class GenerateTests
{
    private const string Generate = "/api/v1/inference/pow/generate";
    private static readonly long[] Nonces = [5, 0, 9, 2, 7, 11, 4];

    private static PocArtifact[] Honest(IEnumerable<long> nonces) =>
        [.. nonces.Select(n => DeterministicProver.Artifact(Round(OtherKey), n))];

    /// <summary>The artifact negated (every float16 sign bit flipped): at distance 2 from the honest unit vector.</summary>
    private static PocArtifact Perturbed(PocArtifact artifact)
    {
        var bytes = Convert.FromBase64String(artifact.VectorB64);
        for (var i = 1; i < bytes.Length; i += 2)
            bytes[i] ^= 0x80;
        return artifact with { VectorB64 = Convert.ToBase64String(bytes) };
    }

    [Fact]
    public async Task Generate_with_wait_returns_the_artifacts_in_request_order()
    {
        await using var poc = await StartAsync();
        var (status, body) = await poc.Send(HttpMethod.Post, Generate, GenerateBody(Nonces, wait: true, batchSize: 2));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["status", "request_id", "artifacts", "encoding"], body!.AsObject().Select(p => p.Key));
        Assert.Equal("completed", (string?)body["status"]);
        Assert.True(Guid.TryParse((string?)body["request_id"], out _));
        Assert.Equal("""{"dtype":"f16","k_dim":12,"endian":"le"}""", body["encoding"]!.ToJsonString());
        var expected = new JsonArray([.. Honest(Nonces).Select(a => (JsonNode)new JsonObject { ["nonce"] = a.Nonce, ["vector_b64"] = a.VectorB64 })]);
        Assert.Equal(expected.ToJsonString(), body["artifacts"]!.ToJsonString());
        // Four forwards of at most batch_size nonces.
        Assert.Equal([[5L, 0], [9L, 2], [7L, 11], [4L]], poc.Prover.Calls);
        Assert.Equal("IDLE", await poc.PocStatus());
    }

    [Fact]
    public async Task Validation_applies_the_fraud_test_with_either_threshold_name()
    {
        await using var poc = await StartAsync();
        var nonces = Enumerable.Range(100, 20).Select(n => (long)n).ToArray();
        var honest = Honest(nonces);

        var (status, body) = await poc.Send(HttpMethod.Post, Generate, GenerateBody(nonces, wait: true, validation: honest,
            statTest: new JsonObject { ["dist_threshold"] = 0.2, ["p_mismatch"] = 0.1, ["p_value_threshold"] = 0.05 }));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["status", "request_id", "n_total", "n_mismatch", "mismatch_nonces", "p_value", "fraud_detected"], body!.AsObject().Select(p => p.Key));
        Assert.Equal("completed", (string?)body["status"]);
        Assert.Equal(20, (int)body["n_total"]!);
        Assert.Equal(0, (int)body["n_mismatch"]!);
        Assert.Equal("[]", body["mismatch_nonces"]!.ToJsonString());
        Assert.Equal(1.0, (double)body["p_value"]!);
        Assert.False((bool)body["fraud_detected"]!);

        // One mismatch in 20 at p_mismatch 0.01: p = 1 − 0.99^20 ≈ 0.182. Which threshold applies decides the verdict.
        var oneOff = honest.Select((a, i) => i == 3 ? Perturbed(a) : a).ToArray();
        foreach (var (statTest, fraud) in new[]
        {
            ("""{"p_mismatch":0.01,"fraud_threshold":0.01,"p_value_threshold":0.5}""", true),
            ("""{"p_mismatch":0.01,"fraud_threshold":0.5,"p_value_threshold":0.01}""", false),
            ("""{"p_mismatch":0.01,"fraud_threshold":0.5}""", true),
            ("""{"p_mismatch":0.01}""", false),
        })
        {
            (status, body) = await poc.Send(HttpMethod.Post, Generate,
                GenerateBody(nonces, wait: true, validation: oneOff, statTest: JsonNode.Parse(statTest)!.AsObject()));
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal(1, (int)body!["n_mismatch"]!);
            Assert.Equal("[103]", body["mismatch_nonces"]!.ToJsonString());
            Assert.Equal(1 - Math.Pow(0.99, 20), (double)body["p_value"]!, 1e-9);
            Assert.True(fraud == (bool)body["fraud_detected"]!, statTest);
        }
    }

    [Fact]
    public async Task Queued_validation_of_perturbed_artifacts_reports_fraud_by_callback()
    {
        await using var receiver = await CallbackReceiver.StartAsync();
        await using var poc = await StartAsync();
        var url = receiver.UrlFor(ModelId);
        var nonces = Enumerable.Range(0, 12).Select(n => 3L * n).ToArray();

        var (status, body) = await poc.Send(HttpMethod.Post, Generate,
            GenerateBody(nonces, wait: false, url, [.. Honest(nonces).Select(Perturbed)]));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["status", "request_id", "queued_count"], body!.AsObject().Select(p => p.Key));
        Assert.Equal("queued", (string?)body["status"]);
        Assert.Equal(12, (int)body["queued_count"]!);
        var requestId = (string)body["request_id"]!;
        Assert.StartsWith($"{poc.BackendPort}:", requestId);
        var uuid = requestId[(requestId.IndexOf(':') + 1)..];

        JsonNode? result = null;
        await Until(async () => (string?)(result = (await poc.Send(HttpMethod.Get, $"{Generate}/{requestId}")).Body)!["status"] == "completed",
            "the queued job completes");
        Assert.Equal(requestId, (string?)result!["request_id"]);
        Assert.Equal(12, (int)result["n_mismatch"]!);
        Assert.True((bool)result["fraud_detected"]!);

        await Until(() => receiver.Accepted.Count == 1, "the /validated callback");
        var callback = receiver.Accepted[0];
        Assert.Equal("/v2/poc-batches/Qwen%252FQwen3-0.6B/validated", callback.RawTarget);
        Assert.Equal(["request_id", "block_hash", "block_height", "public_key", "node_id", "n_total", "n_mismatch", "mismatch_nonces", "p_value", "fraud_detected"],
            callback.Body.Select(p => p.Key));
        Assert.Equal(uuid, (string?)callback.Body["request_id"]);
        Assert.Equal(OtherKey, (string?)callback.Body["public_key"]);
        Assert.Equal(BlockHash, (string?)callback.Body["block_hash"]);
        Assert.Equal(BlockHeight, (long)callback.Body["block_height"]!);
        Assert.Equal(1, (int)callback.Body["node_id"]!);
        Assert.Equal(12, (int)callback.Body["n_total"]!);
        Assert.Equal(new JsonArray([.. nonces.Select(n => (JsonNode)n)]).ToJsonString(), callback.Body["mismatch_nonces"]!.ToJsonString());
        Assert.True((bool)callback.Body["fraud_detected"]!);

        // Without validation, the job's artifacts go to /generated with its request id.
        (_, body) = await poc.Send(HttpMethod.Post, Generate, GenerateBody([1, 2, 3], wait: false, url));
        await Until(() => receiver.Accepted.Count == 2, "the job's /generated callback");
        callback = receiver.Accepted[1];
        Assert.Equal("/v2/poc-batches/Qwen%252FQwen3-0.6B/generated", callback.RawTarget);
        Assert.Equal(["public_key", "block_hash", "block_height", "node_id", "artifacts", "encoding", "request_id"], callback.Body.Select(p => p.Key));
        Assert.EndsWith((string)callback.Body["request_id"]!, (string?)body!["request_id"]);
        Assert.Equal(3, callback.Body["artifacts"]!.AsArray().Count);
    }

    [Fact]
    public async Task Validation_nonces_must_be_the_requested_nonces()
    {
        await using var poc = await StartAsync();
        var (status, body) = await poc.Send(HttpMethod.Post, Generate, GenerateBody([1, 2, 3], wait: true, validation: Honest([1, 2, 4])));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("""{"detail":"validation.artifacts nonces must match nonces field"}""", body!.ToJsonString());
        Assert.Empty(poc.Prover.Calls);
    }

    [Fact]
    public async Task Request_ids_are_port_colon_uuid_and_results_expire()
    {
        await using var poc = await StartAsync(settings: ["--Poc:GenerateResultTtlSec", "0.5"]);
        foreach (var bad in new[] { "abc", "x:6f0c1e2d-0000-4000-8000-000000000000" })
            Assert.Equal(HttpStatusCode.BadRequest, (await poc.Send(HttpMethod.Get, $"{Generate}/{bad}")).Status);
        foreach (var unknown in new[] { $"{poc.BackendPort}:{Guid.NewGuid()}", $"{poc.BackendPort + 1}:{Guid.NewGuid()}", $"{poc.BackendPort}:nope" })
        {
            var (status, body) = await poc.Send(HttpMethod.Get, $"{Generate}/{unknown}");
            Assert.Equal(HttpStatusCode.NotFound, status);
            Assert.Equal("""{"detail":"Request not found"}""", body!.ToJsonString());
        }

        var (_, queued) = await poc.Send(HttpMethod.Post, Generate, GenerateBody([1, 2], wait: false));
        var id = (string)queued!["request_id"]!;
        await Until(async () => (string?)(await poc.Send(HttpMethod.Get, $"{Generate}/{id}")).Body!["status"] == "completed", "the job completes");
        await Task.Delay(700, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.NotFound, (await poc.Send(HttpMethod.Get, $"{Generate}/{id}")).Status);
    }

    [Fact]
    public async Task Queued_jobs_wait_for_generation_stop_cancels_them_and_the_queue_is_capped()
    {
        await using var poc = await StartAsync(settings: ["--Poc:MaxQueuedNonces", "10"]);
        var (status, _) = await poc.Send(HttpMethod.Post, "/api/v1/inference/pow/init/generate", InitBody(null, batchSize: 4));
        Assert.Equal(HttpStatusCode.OK, status);

        // Even nonces: node 1 of 2 generates only odd ones, so any even nonce computed would be this job's.
        (status, var body) = await poc.Send(HttpMethod.Post, Generate, GenerateBody([.. Enumerable.Range(0, 8).Select(n => 2L * n)], wait: false));
        Assert.Equal(HttpStatusCode.OK, status);
        var waiting = (string)body!["request_id"]!;
        (status, body) = await poc.Send(HttpMethod.Post, Generate, GenerateBody([1, 2, 3], wait: false));
        Assert.Equal(HttpStatusCode.TooManyRequests, status);
        Assert.Equal("Queue full: 8 nonces queued, limit is 10", (string?)body!["detail"]);

        await Task.Delay(300, TestContext.Current.CancellationToken);
        (_, body) = await poc.Send(HttpMethod.Get, $"{Generate}/{waiting}");
        Assert.Contains((string?)body!["status"], new[] { "queued", "running" });
        Assert.DoesNotContain(poc.Prover.Computed, n => n % 2 == 0);

        (status, _) = await poc.Send(HttpMethod.Post, "/api/v1/inference/pow/stop");
        Assert.Equal(HttpStatusCode.OK, status);
        (_, body) = await poc.Send(HttpMethod.Get, $"{Generate}/{waiting}");
        Assert.Equal($$"""{"status":"cancelled","request_id":"{{waiting}}"}""", body!.ToJsonString());

        // The cancelled job's nonces no longer count; a slow validation job shows as VALIDATING and closes the gate.
        poc.Prover.Delay = TimeSpan.FromMilliseconds(150);
        var nonces = Enumerable.Range(0, 8).Select(n => (long)n).ToArray();
        (status, body) = await poc.Send(HttpMethod.Post, Generate, GenerateBody(nonces, wait: false, validation: Honest(nonces)));
        Assert.Equal(HttpStatusCode.OK, status);
        var validating = (string)body!["request_id"]!;
        await Until(async () => await poc.PocStatus() == "VALIDATING", "poc_status VALIDATING");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await JsonHttp.Send(poc.Inference, HttpMethod.Post, "/v1/chat/completions", "{}")).Status);
        await Until(async () => (string?)(await poc.Send(HttpMethod.Get, $"{Generate}/{validating}")).Body!["status"] == "completed", "validation completes");
        Assert.Equal("IDLE", await poc.PocStatus());
    }
}

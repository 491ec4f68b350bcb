using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using MLNode.Engines.Hosting;
using MLNode.Runtime.Registry;

namespace MLNode.Worker.Tests;

public sealed class ManagementApiTests
{
    private const string ModelId = TestRegistry.ModelId;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Task<WorkerServer> Start(ScriptedEngine? engine = null, Func<IReadOnlyList<ModelFile>, IReadOnlyList<ModelFile>>? tamper = null) =>
        WorkerServer.StartAsync(f => TestRegistry.Json(f, tamper), s => s.AddSingleton<IExecutorFactory>(engine ?? new ScriptedEngine()));


    private static string UpBody(params string[] args) =>
        JsonSerializer.Serialize(new { model = ModelId, dtype = "auto", additional_args = args });

    [Fact]
    public async Task Replays_the_inference_phase_of_the_spec_wire_transcript()
    {
        await using var worker = await Start();
        var m = worker.Management;

        var (status, state) = await JsonHttp.Send(m, HttpMethod.Get, "/api/v1/state");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("STOPPED", (string?)state!["state"]);
        Assert.Null(state["poc_status"]);
        Assert.Null(state["loaded_model"]);
        Assert.Equal("0.1.0", (string?)state["version"]);

        // dapi: POST /stop, then /inference/up with the chain's vLLM flags (unknown ones must not fail the start).
        (status, var stop) = await JsonHttp.Send(m, HttpMethod.Post, "/api/v1/stop");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("""{"status":"OK"}""", stop!.ToJsonString());
        (status, var up) = await JsonHttp.Send(m, HttpMethod.Post, "/api/v1/inference/up",
            UpBody("--tensor-parallel-size", "1", "--max-model-len", "40960", "--enable-auto-tool-choice", "--tool-call-parser", "hermes", "--kv-cache-dtype=fp8"));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("""{"status":"OK"}""", up!.ToJsonString());

        (status, state) = await JsonHttp.Send(m, HttpMethod.Get, "/api/v1/state");
        Assert.Equal("INFERENCE", (string?)state!["state"]);
        Assert.Equal("IDLE", (string?)state["poc_status"]);
        Assert.True((bool)state["inference_healthy"]!);
        Assert.Equal(ModelId, (string?)state["loaded_model"]);

        // dapi's checks on the inference port: /health answers 200, /v1/models names the model first.
        using (var health = await worker.Inference.GetAsync("/health", Ct))
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        (status, var models) = await JsonHttp.Send(worker.Inference, HttpMethod.Get, "/v1/models");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("list", (string?)models!["object"]);
        Assert.Equal(ModelId, (string?)models["data"]![0]!["id"]);
        Assert.Equal(40960, (int)models["data"]![0]!["max_model_len"]!);

        (status, var upStatus) = await JsonHttp.Send(m, HttpMethod.Get, "/api/v1/inference/up/status");
        Assert.Equal("completed", (string?)upStatus!["status"]);
        Assert.False((bool)upStatus["is_starting"]!);
        Assert.True((bool)upStatus["is_running"]!);
        Assert.Null(upStatus["error"]);

        (status, _) = await JsonHttp.Send(m, HttpMethod.Post, "/api/v1/inference/down");
        Assert.Equal(HttpStatusCode.OK, status);
        (_, state) = await JsonHttp.Send(m, HttpMethod.Get, "/api/v1/state");
        Assert.Equal("STOPPED", (string?)state!["state"]);
        (status, _) = await JsonHttp.Send(worker.Inference, HttpMethod.Get, "/v1/models");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
    }

    [Fact]
    public async Task Second_start_while_running_or_starting_is_a_conflict()
    {
        var engine = new ScriptedEngine { LoadDelay = TimeSpan.FromMilliseconds(500) };
        await using var worker = await Start(engine);
        var m = worker.Management;

        var (status, body) = await JsonHttp.Send(m, HttpMethod.Post, "/api/v1/inference/up/async", UpBody());
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("starting", (string?)body!["status"]);
        Assert.Equal("Inference startup initiated in background", (string?)body["message"]);

        (status, var upStatus) = await JsonHttp.Send(m, HttpMethod.Get, "/api/v1/inference/up/status");
        Assert.Equal("in_progress", (string?)upStatus!["status"]);
        Assert.True((bool)upStatus["is_starting"]!);

        (status, body) = await JsonHttp.Send(m, HttpMethod.Post, "/api/v1/inference/up", UpBody());
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains("already running", (string?)body!["detail"]);

        await WaitFor(async () => (string?)(await JsonHttp.Send(m, HttpMethod.Get, "/api/v1/inference/up/status")).Body!["status"] == "completed");
        (status, body) = await JsonHttp.Send(m, HttpMethod.Post, "/api/v1/inference/up/async", UpBody());
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Equal(1, engine.Loads);

        // stop always succeeds and frees the node for the next start.
        (status, _) = await JsonHttp.Send(m, HttpMethod.Post, "/api/v1/stop");
        Assert.Equal(HttpStatusCode.OK, status);
        (status, _) = await JsonHttp.Send(m, HttpMethod.Post, "/api/v1/inference/up", UpBody());
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(2, engine.Loads);
    }

    [Fact]
    public async Task Down_during_a_start_cancels_it_and_leaves_the_node_stopped()
    {
        var engine = new ScriptedEngine { LoadDelay = TimeSpan.FromSeconds(30) };
        await using var worker = await Start(engine);
        var m = worker.Management;
        await JsonHttp.Send(m, HttpMethod.Post, "/api/v1/inference/up/async", UpBody());
        var (status, _) = await JsonHttp.Send(m, HttpMethod.Post, "/api/v1/inference/down");
        Assert.Equal(HttpStatusCode.OK, status);
        var (_, upStatus) = await JsonHttp.Send(m, HttpMethod.Get, "/api/v1/inference/up/status");
        Assert.Equal("cancelled", (string?)upStatus!["status"]);
        Assert.False((bool)upStatus["is_running"]!);
        var (_, state) = await JsonHttp.Send(m, HttpMethod.Get, "/api/v1/state");
        Assert.Equal("STOPPED", (string?)state!["state"]);
    }

    public static TheoryData<string, int, string> BadUpBodies => new()
    {
        { "", 422, "body" },
        { "{", 422, "body" },
        { "[1,2]", 422, "body" },
        { "null", 422, "body" },
        { """{"dtype":"auto"}""", 422, "body.model" },
        { """{"model":5}""", 422, "body.model" },
        { """{"model":""}""", 422, "body.model" },
        { """{"model":null}""", 422, "body.model" },
        { """{"model":"Qwen/Qwen3-0.6B","dtype":7}""", 422, "body.dtype" },
        { """{"model":"Qwen/Qwen3-0.6B","dtype":"int3"}""", 422, "body.dtype" },
        { """{"model":"Qwen/Qwen3-0.6B","additional_args":"--max-model-len 5"}""", 422, "body.additional_args" },
        { """{"model":"Qwen/Qwen3-0.6B","additional_args":["--max-model-len",5]}""", 422, "body.additional_args.1" },
        { """{"model":"Qwen/Qwen3-0.6B","additional_args":["--max-model-len","-5"]}""", 422, "body.additional_args" },
        { """{"model":"Qwen/Qwen3-0.6B","additional_args":["--gpu-memory-utilization","1.5"]}""", 422, "body.additional_args" },
        { """{"model":"Qwen/Qwen3-0.6B","additional_args":["--max-model-len","999999"]}""", 422, "--max-model-len" },
        { """{"model":"Other/Model"}""", 422, "body.model" },
    };

    [Theory]
    [MemberData(nameof(BadUpBodies))]
    public async Task Bad_up_bodies_get_a_4xx_naming_the_field_and_change_nothing(string json, int expected, string field)
    {
        await using var worker = await Start();
        var (status, body) = await JsonHttp.Send(worker.Management, HttpMethod.Post, "/api/v1/inference/up", json);
        Assert.Equal(expected, (int)status);
        Assert.Contains(field, body!.ToJsonString());
        var (_, state) = await JsonHttp.Send(worker.Management, HttpMethod.Get, "/api/v1/state");
        Assert.Equal("STOPPED", (string?)state!["state"]);
        // The node still takes a good request afterwards.
        var (ok, _) = await JsonHttp.Send(worker.Management, HttpMethod.Post, "/api/v1/inference/up", UpBody());
        Assert.Equal(HttpStatusCode.OK, ok);
    }

    [Fact]
    public async Task Oversized_body_is_413()
    {
        await using var worker = await Start();
        var args = Enumerable.Repeat("--x", 300_000).ToArray();
        var (status, body) = await JsonHttp.Send(worker.Management, HttpMethod.Post, "/api/v1/inference/up", UpBody(args));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Contains("body", (string?)body!["detail"]);
    }

    [Fact]
    public async Task Weights_with_a_wrong_sha256_are_refused_and_nothing_is_loaded()
    {
        var engine = new ScriptedEngine();
        await using var worker = await Start(engine, files => [files[0], files[1] with { Sha256 = new string('0', 64) }]);
        var (status, body) = await JsonHttp.Send(worker.Management, HttpMethod.Post, "/api/v1/inference/up", UpBody());
        Assert.Equal(HttpStatusCode.InternalServerError, status);
        var detail = (string?)body!["detail"];
        Assert.Contains("model.safetensors: SHA-256 is ", detail);
        Assert.Contains("nothing was loaded", detail);
        Assert.Equal(0, engine.Loads);
        var (_, state) = await JsonHttp.Send(worker.Management, HttpMethod.Get, "/api/v1/state");
        Assert.Equal("STOPPED", (string?)state!["state"]);
        var (_, upStatus) = await JsonHttp.Send(worker.Management, HttpMethod.Get, "/api/v1/inference/up/status");
        Assert.Equal("failed", (string?)upStatus!["status"]);
        Assert.Contains("SHA-256", (string?)upStatus["error"]);
    }

    [Fact]
    public async Task Missing_weight_file_is_refused()
    {
        await using var worker = await Start();
        File.Delete(Path.Combine(worker.Folder, "model", "model.safetensors"));
        var (status, body) = await JsonHttp.Send(worker.Management, HttpMethod.Post, "/api/v1/inference/up", UpBody());
        Assert.Equal(HttpStatusCode.InternalServerError, status);
        Assert.Contains("model.safetensors: missing", (string?)body!["detail"]);
    }

    [Fact]
    public async Task Gpu_routes_without_nvml_answer_like_the_reference()
    {
        await using var worker = await Start();
        var (status, devices) = await JsonHttp.Send(worker.Management, HttpMethod.Get, "/api/v1/gpu/devices");
        Assert.Equal(HttpStatusCode.OK, status);
        // This CI machine has no NVIDIA driver: an empty list, and 503 for the driver, as pynvml's absence gives.
        Assert.Equal("""{"devices":[],"count":0}""", devices!.ToJsonString());
        (status, var driver) = await JsonHttp.Send(worker.Management, HttpMethod.Get, "/api/v1/gpu/driver");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Contains("NVML", (string?)driver!["detail"]);
    }

    [Fact]
    public async Task Health_probes_have_the_reference_shapes()
    {
        await using var worker = await Start();
        foreach (var path in new[] { "/health", "/livez" })
        {
            var (status, health) = await JsonHttp.Send(worker.Management, HttpMethod.Get, path);
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal("healthy", (string?)health!["status"]);
            Assert.Equal("STOPPED", (string?)health["service_state"]);
            Assert.False((bool)health["gpu"]!["available"]!);
            Assert.Equal(["pow", "inference", "train"], health["managers"]!.AsObject().Select(p => p.Key));
        }
        var (readyStatus, ready) = await JsonHttp.Send(worker.Management, HttpMethod.Get, "/readyz");
        Assert.Equal(HttpStatusCode.OK, readyStatus);
        Assert.Equal("""{"ready":true}""", ready!.ToJsonString());
    }

    /// <summary>A loaded model that can no longer serve (a tensor-parallel rank failed) is reported unhealthy, with its error.</summary>
    [Fact]
    public async Task A_stopped_model_is_unhealthy_on_both_ports()
    {
        var engine = new ScriptedEngine();
        await using var worker = await Start(engine);
        var (status, _) = await JsonHttp.Send(worker.Management, HttpMethod.Post, "/api/v1/inference/up", UpBody());
        Assert.Equal(HttpStatusCode.OK, status);
        using (var healthy = await worker.Inference.GetAsync("/health", Ct))
            Assert.Equal(HttpStatusCode.OK, healthy.StatusCode);

        engine.Failure = "tensor-parallel rank 1 of 2 failed, and the model is stopped: CUDA error: an illegal memory access";
        var (probe, detail) = await JsonHttp.Send(worker.Inference, HttpMethod.Get, "/health");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, probe);
        Assert.Equal(engine.Failure, (string?)detail!["detail"]);
        var (_, state) = await JsonHttp.Send(worker.Management, HttpMethod.Get, "/api/v1/state");
        Assert.Equal("INFERENCE", (string?)state!["state"]);
        Assert.False((bool)state["inference_healthy"]!);
    }

    [Fact]
    public async Task The_inference_port_serves_only_the_openai_api()
    {
        await using var worker = await Start();
        foreach (var path in new[] { "/api/v1/state", "/api/v1/gpu/devices", "/metrics" })
        {
            using var response = await worker.Inference.GetAsync(path, Ct);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }
        using var stop = await worker.Inference.PostAsync("/api/v1/stop", null, Ct);
        Assert.Equal(HttpStatusCode.NotFound, stop.StatusCode);
        // Without a model, the OpenAI routes answer like the reference proxy without a backend.
        var (status, body) = await JsonHttp.Send(worker.Inference, HttpMethod.Get, "/v1/models");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal("No vLLM backend available", (string?)body!["detail"]);
    }

    [Fact]
    public async Task Metrics_report_requests_node_state_and_model_load_time()
    {
        await using var worker = await Start();
        await JsonHttp.Send(worker.Management, HttpMethod.Post, "/api/v1/inference/up", UpBody());
        var text = await worker.Management.GetStringAsync("/metrics", Ct);
        Assert.Contains("mlnode_node_state{state=\"INFERENCE\"} 1", text);
        Assert.Contains($"mlnode_model_load_seconds{{model=\"{ModelId}\"}}", text);
        Assert.Contains("http_requests_received_total{code=\"200\",method=\"POST\"", text);
        Assert.Contains("http_request_duration_seconds", text);
    }

    private static async Task WaitFor(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached within 20 s");
            await Task.Delay(50, Ct);
        }
    }
}

/// <summary>The shipped registry end to end: the demo LLM is generated, verified and loaded by the real engine.</summary>
public sealed class DemoModelTests
{
    [Fact]
    public async Task The_demo_model_loads_through_the_real_engine()
    {
        var ct = TestContext.Current.CancellationToken;
        var shipped = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "models.json"));
        await using var worker = await WorkerServer.StartAsync(_ => shipped);
        using var up = await worker.Management.PostAsync("/api/v1/inference/up",
            new StringContent("""{"model":"mlnode/demo-qwen3","dtype":"auto","additional_args":[]}""", Encoding.UTF8, "application/json"), ct);
        Assert.Equal(HttpStatusCode.OK, up.StatusCode);
        var state = JsonNode.Parse(await worker.Management.GetStringAsync("/api/v1/state", ct))!;
        Assert.Equal("INFERENCE", (string?)state["state"]);
        Assert.Equal("mlnode/demo-qwen3", (string?)state["loaded_model"]);
        Assert.Equal("cpu", (string?)state["runtime"]!["device"]);
        Assert.True(File.Exists(Path.Combine(worker.Folder, "cache", "demo", "mlnode-demo-qwen3", "model.safetensors")));
    }
}

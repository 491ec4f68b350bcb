using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using MLNode.Tests;

namespace MLNode.Worker.Tests;

/// <summary>A worker serving wan-tiny from the fixture folder, and pipeline_reference.json's job as /v1/videos fields.</summary>
public static class WanTinyWorker
{
    public const string ModelId = "wan-tiny";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// Starts a worker with wan-tiny loaded (its outputs in the server's own folder unless <paramref name="extraArgs"/>
    /// name Video:OutputDir) and waits until it takes jobs.
    /// </summary>
    public static async Task<WorkerServer> StartAsync(params string[] extraArgs)
    {
        var server = await WorkerServer.StartAsync(Registry, extraArgs: extraArgs);
        var (status, body) = await JsonHttp.Send(server.Management, HttpMethod.Post, "/api/v1/inference/up", $$"""{"model":"{{ModelId}}"}""");
        Assert.True(status == HttpStatusCode.OK, $"inference/up: {status} {body}");
        for (var i = 0; i < 600; i++)
        {
            var (probe, _) = await JsonHttp.Send(server.Inference, HttpMethod.Post, "/v1/videos", new JsonObject { ["prompt"] = "x", ["width"] = 70 }.ToJsonString());
            if (probe != HttpStatusCode.ServiceUnavailable) return server;
            await Task.Delay(100, Ct);
        }
        throw new TimeoutException("wan-tiny never loaded");
    }

    /// <summary>Polls GET /v1/videos/{id} until the job is in <paramref name="state"/>; fails if it ends in another.</summary>
    public static async Task<JsonNode> WaitAsync(WorkerServer server, string id, string state)
    {
        for (var i = 0; i < 1200; i++)
        {
            var (_, video) = await JsonHttp.Send(server.Inference, HttpMethod.Get, $"/v1/videos/{id}");
            var status = video!["status"]!.GetValue<string>();
            if (status == state) return video;
            Assert.True(status is "queued" or "in_progress", $"video {id} is {status}, waiting for {state}: {video.ToJsonString()}");
            await Task.Delay(100, Ct);
        }
        throw new TimeoutException($"video {id} never reached {state}");
    }

    /// <summary>pipeline_reference.json's job as /v1/videos fields (guidance_scale is the high-noise stage's, as vLLM-Omni applies it).</summary>
    public static JsonObject ReferenceJob(string format)
    {
        var job = JsonNode.Parse(File.ReadAllText(Fixtures.Path("wan", "wan-tiny", "pipeline_reference.json")))!["job"]!;
        return new JsonObject
        {
            ["model"] = ModelId,
            ["prompt"] = job["prompt"]!.GetValue<string>(),
            ["negative_prompt"] = job["negative_prompt"]!.GetValue<string>(),
            ["size"] = $"{job["width"]}x{job["height"]}",
            ["num_frames"] = job["num_frames"]!.GetValue<int>(),
            ["fps"] = job["fps"]!.GetValue<int>(),
            ["num_inference_steps"] = job["num_inference_steps"]!.GetValue<int>(),
            ["flow_shift"] = job["flow_shift"]!.GetValue<double>(),
            ["boundary_ratio"] = job["boundary_ratio"]!.GetValue<double>(),
            ["guidance_scale"] = job["guidance_scale_high_noise"]!.GetValue<double>(),
            ["guidance_scale_2"] = job["guidance_scale_low_noise"]!.GetValue<double>(),
            ["seed"] = job["seed"]!.GetValue<int>(),
            ["output_format"] = format,
        };
    }

    /// <summary>A registry with wan-tiny's fixture folder and the SHA-256 of each of its files.</summary>
    private static string Registry(string folder)
    {
        var model = Fixtures.Path("wan", "wan-tiny");
        var files = new[] { "tokenizer", "text_encoder", "transformer", "transformer_2", "vae" }
            .SelectMany(part => Directory.GetFiles(Path.Combine(model, part)))
            .Select(file => new JsonObject
            {
                ["path"] = Path.GetRelativePath(model, file).Replace('\\', '/'),
                ["sha256"] = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file))),
            });
        var entry = new JsonObject
        {
            ["id"] = ModelId,
            ["path"] = model,
            ["modality"] = "dit",
            ["architecture"] = "wan2.2",
            ["dtype"] = "float32",
            ["files"] = new JsonArray([.. files]),
            ["limits"] = new JsonObject { ["max_model_len"] = 512, ["max_batch"] = 1 },
        };
        return new JsonObject { ["models"] = new JsonArray(entry) }.ToJsonString();
    }
}

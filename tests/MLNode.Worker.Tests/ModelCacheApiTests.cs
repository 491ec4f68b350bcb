using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace MLNode.Worker.Tests;

/// <summary>/api/v1/models/* over the HF cache (the download machinery itself is tested in MLNode.Runtime.Tests/Hub).</summary>
public sealed class ModelCacheApiTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static Task<WorkerServer> Start(bool offline) => WorkerServer.StartAsync(_ => """{"models":[]}""", null,
        $"--Hub:HfHome={Path.Combine(Path.GetTempPath(), "mlnode-hf-" + Guid.NewGuid().ToString("N"))}", $"--Hub:Offline={offline}",
        "--Hub:Endpoint=http://127.0.0.1:9");


    [Fact]
    public async Task Routes_answer_in_the_reference_shapes()
    {
        await using var worker = await Start(offline: true);
        var m = worker.Management;
        var model = """{"hf_repo":"Qwen/Qwen3-8B","hf_commit":null}""";

        var (status, body) = await JsonHttp.Send(m, HttpMethod.Post, "/api/v1/models/status", model);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("""{"model":{"hf_repo":"Qwen/Qwen3-8B","hf_commit":null},"status":"NOT_FOUND","progress":null,"error_message":null}""", body!.ToJsonString());

        // Offline hosts: the download is acknowledged and ignored, exactly like the reference.
        (status, body) = await JsonHttp.Send(m, HttpMethod.Post, "/api/v1/models/download", model);
        Assert.Equal(HttpStatusCode.Accepted, status);
        Assert.Equal("IGNORED", (string?)body!["status"]);
        Assert.EndsWith(":offline", (string?)body["task_id"]);

        (status, body) = await JsonHttp.Send(m, HttpMethod.Get, "/api/v1/models/list", null);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("""{"models":[]}""", body!.ToJsonString());

        (status, body) = await JsonHttp.Send(m, HttpMethod.Get, "/api/v1/models/space", null);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True((double)body!["available_gb"]! > 0);
        Assert.EndsWith("hub", (string?)body["cache_path"]);

        (status, body) = await JsonHttp.Send(m, HttpMethod.Delete, "/api/v1/models", model);
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("not found", (string?)body!["detail"]);
    }

    [Theory]
    [InlineData("""{}""", "body.hf_repo")]
    [InlineData("""{"hf_repo":42}""", "body.hf_repo")]
    [InlineData("""{"hf_repo":"../../etc"}""", "body.hf_repo")]
    [InlineData("""{"hf_repo":"a/b","hf_commit":"../main"}""", "body.hf_commit")]
    [InlineData("""{"hf_repo":"a/b","hf_commit":7}""", "body.hf_commit")]
    public async Task Bad_bodies_name_the_field(string json, string field)
    {
        await using var worker = await Start(offline: false);
        foreach (var (method, path) in new[] { (HttpMethod.Post, "/api/v1/models/status"), (HttpMethod.Post, "/api/v1/models/download"), (HttpMethod.Delete, "/api/v1/models") })
        {
            var (status, body) = await JsonHttp.Send(worker.Management, method, path, json);
            Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
            Assert.Contains(field, (string?)body!["detail"]![0]!["msg"]);
        }
    }
}

using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using MLNode.Runtime.Checkpoints;
using MLNode.Tests;
using static TorchSharp.torch;

namespace MLNode.Worker.Tests;

/// <summary>
/// The /v1/videos API on a worker serving wan-tiny from the fixture folder: pipeline_reference.json's job from its prompt
/// through the queue to lossless frames, field validation, the async lifecycle with cancel and delete, and the answer
/// when no text-to-video model is loaded.
/// </summary>
public sealed class VideosApiTests : IAsyncLifetime
{
    // The worker runs the reference job in true float32 where the reference's GPU convolutions ran in TF32: frames
    // truncated to uint8 then differ by one level where a value sits near a level boundary (WanPipelineTests).
    private const int LevelTolerance = 1;

    private WorkerServer _server = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _server = await WanTinyWorker.StartAsync("--Video:MaxSteps", "60");

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Reference_job_through_the_api_gives_the_reference_frames()
    {
        var (status, created) = await Post("/v1/videos", WanTinyWorker.ReferenceJob("frames"));
        Assert.True(status == HttpStatusCode.OK, created?.ToJsonString());
        Assert.Equal("queued", created!["status"]!.GetValue<string>());
        var id = created["id"]!.GetValue<string>();

        var done = await WanTinyWorker.WaitAsync(_server, id, "completed");

        using var response = await _server.Inference.GetAsync($"/v1/videos/{id}/content", Ct);
        var frames = await response.Content.ReadAsByteArrayAsync(Ct);
        AssertWithinOneLevel(frames);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(frames)), done["hashes"]!["frames_sha256"]!.GetValue<string>());
        Assert.Equal(9, done["hashes"]!["phash"]!.AsArray().Count);
        Assert.Equal((4, 4, 100), (done["step"]!.GetValue<int>(), done["steps"]!.GetValue<int>(), done["progress"]!.GetValue<int>()));
        Assert.Equal("blurry, low quality", done["job_spec"]!["negative_prompt"]!.GetValue<string>());
        Assert.Equal(64, done["job_id"]!.GetValue<string>().Length);
        // 3 latent frames × 4 × 4 patches, 4 steps × 2 CFG branches.
        Assert.Equal((48, 8), (done["cost"]!["latent_patches"]!.GetValue<long>(), done["cost"]!["forward_passes"]!.GetValue<int>()));
    }

    [Fact]
    public async Task Sync_job_answers_an_mp4()
    {
        using var response = await _server.Inference.PostAsync("/v1/videos/sync",
            new StringContent(WanTinyWorker.ReferenceJob("mp4").ToJsonString(), System.Text.Encoding.UTF8, "application/json"), Ct);
        var bytes = await response.Content.ReadAsByteArrayAsync(Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("video/mp4", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal("ftyp", System.Text.Encoding.ASCII.GetString(bytes, 4, 4));
    }

    [Fact]
    public async Task Multipart_form_fields_make_the_same_job_as_json()
    {
        var json = WanTinyWorker.ReferenceJob("frames");
        using var form = new MultipartFormDataContent();
        foreach (var (name, value) in json) form.Add(new StringContent(value!.ToString()), name);
        form.Add(new StringContent("{\"sample_solver\": \"unipc-official\"}"), "extra_params");

        using var response = await _server.Inference.PostAsync("/v1/videos", form, Ct);
        var created = JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!;
        var (_, fromJson) = await Post("/v1/videos", json);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(fromJson!["job_id"]!.GetValue<string>(), created["job_id"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("width", 70)]
    [InlineData("height", 40)]
    [InlineData("num_frames", 8)]
    [InlineData("num_inference_steps", 61)]
    [InlineData("lora", 1)]
    [InlineData("guidance_scal", 1)]
    public async Task Bad_fields_are_refused_naming_them(string field, int value)
    {
        var job = WanTinyWorker.ReferenceJob("frames");
        job[field] = value;

        var (status, body) = await Post("/v1/videos", job);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
        Assert.Equal(field, body!["detail"]![0]!["loc"]![0]!.GetValue<string>());
    }

    [Fact]
    public async Task Malformed_mistyped_and_oversized_requests_are_refused()
    {
        var (malformed, malformedBody) = await JsonHttp.Send(_server.Inference, HttpMethod.Post, "/v1/videos", "{\"prompt\": ");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, malformed);
        Assert.Equal("body", malformedBody!["detail"]![0]!["loc"]![0]!.GetValue<string>());

        var job = WanTinyWorker.ReferenceJob("frames");
        job["num_frames"] = "nine";
        var (mistyped, mistypedBody) = await Post("/v1/videos", job);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, mistyped);
        Assert.Equal("num_frames", mistypedBody!["detail"]![0]!["loc"]![0]!.GetValue<string>());

        job = WanTinyWorker.ReferenceJob("frames");
        job["prompt"] = new string('a', 2 << 20);
        var (oversized, _) = await Post("/v1/videos", job);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, oversized);
    }

    [Fact]
    public async Task Unknown_model_is_404_and_unknown_video_is_404()
    {
        var job = WanTinyWorker.ReferenceJob("frames");
        job["model"] = "Wan-AI/elsewhere";

        Assert.Equal(HttpStatusCode.NotFound, (await Post("/v1/videos", job)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await JsonHttp.Send(_server.Inference, HttpMethod.Get, "/v1/videos/video_none")).Status);
    }

    [Fact]
    public async Task A_running_job_is_cancelled_by_delete_and_the_queue_serves_on()
    {
        var job = WanTinyWorker.ReferenceJob("frames");
        // A job long enough on the CPU to be caught running: 256×256, 33 frames, 60 steps.
        (job["size"], job["num_frames"], job["num_inference_steps"]) = ("256x256", 33, 60);
        var id = (await Post("/v1/videos", job)).Body!["id"]!.GetValue<string>();
        var next = (await Post("/v1/videos", WanTinyWorker.ReferenceJob("png"))).Body!["id"]!.GetValue<string>();
        await WanTinyWorker.WaitAsync(_server, id, "in_progress");

        var (deleted, body) = await JsonHttp.Send(_server.Inference, HttpMethod.Delete, $"/v1/videos/{id}");

        Assert.Equal(HttpStatusCode.OK, deleted);
        Assert.True(body!["deleted"]!.GetValue<bool>());
        Assert.Equal(HttpStatusCode.NotFound, (await JsonHttp.Send(_server.Inference, HttpMethod.Get, $"/v1/videos/{id}")).Status);
        await WanTinyWorker.WaitAsync(_server, next, "completed");
        var (_, list) = await JsonHttp.Send(_server.Inference, HttpMethod.Get, "/v1/videos");
        Assert.Contains(list!["data"]!.AsArray(), v => v!["id"]!.GetValue<string>() == next);
        using var zip = await _server.Inference.GetAsync($"/v1/videos/{next}/content", Ct);
        Assert.Equal("application/zip", zip.Content.Headers.ContentType!.MediaType);
    }

    [Fact]
    public async Task A_failed_job_is_reported_and_the_queue_serves_on()
    {
        await _server.DisposeAsync();
        _server = await WanTinyWorker.StartAsync("--Video:FFmpegPath", "/nonexistent/ffmpeg");

        var failed = (await Post("/v1/videos", WanTinyWorker.ReferenceJob("mp4"))).Body!["id"]!.GetValue<string>();
        var next = (await Post("/v1/videos", WanTinyWorker.ReferenceJob("frames"))).Body!["id"]!.GetValue<string>();

        var report = await WanTinyWorker.WaitAsync(_server, failed, "failed");
        Assert.Contains("Video:FFmpegPath", report["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, (await JsonHttp.Send(_server.Inference, HttpMethod.Get, $"/v1/videos/{failed}/content")).Status);
        await WanTinyWorker.WaitAsync(_server, next, "completed");
    }

    [Fact]
    public async Task Without_a_video_model_the_answer_is_the_no_backend_error()
    {
        await JsonHttp.Send(_server.Management, HttpMethod.Post, "/api/v1/stop");
        await JsonHttp.Send(_server.Management, HttpMethod.Post, "/api/v1/inference/down");

        var (status, body) = await Post("/v1/videos", WanTinyWorker.ReferenceJob("frames"));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal("No vLLM backend available", body!["detail"]!.GetValue<string>());
    }

    private async Task<(HttpStatusCode Status, JsonNode? Body)> Post(string path, JsonObject job) =>
        await JsonHttp.Send(_server.Inference, HttpMethod.Post, path, job.ToJsonString());

    /// <summary>Raw [F, H, W, 3] frames against the reference's [3, F, H, W] uint8 values (stored as float32).</summary>
    private static void AssertWithinOneLevel(byte[] frames)
    {
        using var tensors = SafetensorsFile.Open(Fixtures.Path("wan", "wan-tiny", "pipeline_tensors.safetensors"));
        using var reference = tensors.Load("video_u8_cfhw", CPU);
        using var ours = tensor(frames, [9, 64, 64, 3]).permute(3, 0, 1, 2).to(ScalarType.Float32);
        using var difference = (ours - reference).abs();
        var worst = difference.max().item<float>();
        Assert.True(worst <= LevelTolerance, $"max |Δ| {worst} levels > {LevelTolerance} ({difference.gt(0).sum().item<long>()} values differ)");
    }
}

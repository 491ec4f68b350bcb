using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace MLNode.Worker.Tests;

/// <summary>
/// POST /v1/videos/validations on a worker serving wan-tiny, against jobs that worker ran itself (one MP4, one with raw
/// frames): v0 accepts honest deliveries and rejects a tampered one, v1 accepts the job's own commitment, final latent
/// and step reveal (fetched from the worker's verification routes) and rejects a commitment to another latent or a
/// reveal for another beacon, v2 regenerates bit-exactly and waits for a running job rather than sharing the model with it;
/// every malformed field is refused by name (422, 413), a spec this node cannot replay is a 409, and v1/v2 without a
/// video model are a 503 while v0 still answers.
/// </summary>
public sealed class VideoValidationsApiTests(VideoValidationsApiTests.CompletedJobs jobs) : IClassFixture<VideoValidationsApiTests.CompletedJobs>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A wan-tiny worker with the reference job completed as an MP4 and as raw frames: manifests and content.</summary>
    public sealed class CompletedJobs : IAsyncLifetime
    {
        public WorkerServer Server { get; private set; } = null!;
        public (JsonObject Manifest, byte[] Content) Mp4 { get; private set; }
        public (JsonObject Manifest, byte[] Content) Frames { get; private set; }

        public async ValueTask InitializeAsync()
        {
            Server = await WanTinyWorker.StartAsync();
            Mp4 = await RunAsync(Server, "mp4");
            Frames = await RunAsync(Server, "frames");
        }

        public async ValueTask DisposeAsync() => await Server.DisposeAsync();
    }

    [Theory]
    [InlineData("mp4")]
    [InlineData("frames")]
    public async Task Honest_delivery_passes_v0(string format)
    {
        var (manifest, content) = format == "mp4" ? jobs.Mp4 : jobs.Frames;

        var (status, body) = await Validate(jobs.Server, Form("v0", manifest, content, format));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(body!["verdict"]!["accept"]!.GetValue<bool>(), body.ToJsonString());
        Assert.Equal("v0", body["mode"]!.GetValue<string>());
        Assert.Equal(manifest["job_id"]!.GetValue<string>(), body["job_id"]!.GetValue<string>());
        Assert.Contains(body["checks"]!.AsArray(), c => c!["name"]!.GetValue<string>() == (format == "mp4" ? "mp4_sha256" : "frames_sha256"));
        Assert.All(body["checks"]!.AsArray(), c => Assert.True(c!["pass"]!.GetValue<bool>()));
        Assert.NotNull(body["timings"]!["v0_ms"]);
        Assert.NotNull(body["timings"]!["total_ms"]);
    }

    [Fact]
    public async Task Tampered_frames_are_rejected_by_v0()
    {
        var frames = (byte[])jobs.Frames.Content.Clone();
        frames[^1] ^= 0x40;

        var (status, body) = await Validate(jobs.Server, Form("v0", jobs.Frames.Manifest, frames, "frames"));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.False(body!["verdict"]!["accept"]!.GetValue<bool>());
        var failed = body["checks"]!.AsArray().Where(c => !c!["pass"]!.GetValue<bool>()).Select(c => c!["name"]!.GetValue<string>());
        Assert.Equal(["frames_sha256"], failed);
    }

    [Fact]
    public async Task The_jobs_own_commitment_latent_and_reveal_pass_v1()
    {
        var challenge = await ChallengeAsync(jobs.Frames.Manifest, "block 0x1f", count: 4);

        var (status, body) = await Validate(jobs.Server, Form("v1", jobs.Frames.Manifest, jobs.Frames.Content, "frames", challenge));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(body!["verdict"]!["accept"]!.GetValue<bool>(), body.ToJsonString());
        Assert.True(body["verdict"]!["bit_exact"]!.GetValue<bool>());
        var names = body["checks"]!.AsArray().Select(c => c!["name"]!.GetValue<string>()).ToArray();
        Assert.Contains("decode_min_ssim", names);
        Assert.Contains("commitment_merkle_root", names);
        Assert.Contains("initial_noise", names);
        Assert.Equal(["step_0_e_v", "step_1_e_v", "step_2_e_v", "step_3_e_v"], names.Where(n => n.EndsWith("_e_v", StringComparison.Ordinal)));
        Assert.NotNull(body["timings"]!["vae_decode_ms"]);
        Assert.NotNull(body["timings"]!["step_replay_ms"]);
    }

    [Fact]
    public async Task A_commitment_to_another_latent_or_a_reveal_for_another_beacon_fails_v1_naming_the_checks()
    {
        var challenge = await ChallengeAsync(jobs.Frames.Manifest, "block 0x1f", count: null);
        var commitment = JsonNode.Parse(challenge.Commitment)!;
        commitment["h_final"] = new string('a', 64);
        var otherLatent = challenge with { Commitment = commitment.ToJsonString() };
        var otherBeacon = challenge with { Beacon = "block 0x20" };

        var (_, latentBody) = await Validate(jobs.Server, Form("v1", jobs.Frames.Manifest, jobs.Frames.Content, "frames", otherLatent));
        var (_, beaconBody) = await Validate(jobs.Server, Form("v1", jobs.Frames.Manifest, jobs.Frames.Content, "frames", otherBeacon));

        Assert.False(latentBody!["verdict"]!["accept"]!.GetValue<bool>());
        var failed = FailedChecks(latentBody);
        Assert.Equal(["final_latent_sha256", "commitment_h_final"], failed[..2]);
        // A challenge of the last step also holds its successor, x0, against h_final.
        Assert.All(failed[2..], name => Assert.Equal("step_3_hashes", name));
        Assert.False(beaconBody!["verdict"]!["accept"]!.GetValue<bool>());
        Assert.Contains("challenges_match_beacon", FailedChecks(beaconBody));
    }

    [Fact]
    public async Task V2_regenerates_the_job_bit_exactly_and_waits_for_the_running_job()
    {
        // A job far larger than the reference one holds the model; the validation posted while it runs must not start
        // until it is gone. Run alongside, the validation (text encoding, 4 tiny steps, VAE) finishes before the big
        // job's third step (each a few seconds on the CPU, most of it the two JL sketches of an 81,920-value latent):
        // this test fails when the lock is taken out.
        var big = WanTinyWorker.ReferenceJob("frames");
        (big["size"], big["num_frames"], big["num_inference_steps"]) = ("256x256", 17, 60);
        var (_, created) = await JsonHttp.Send(jobs.Server.Inference, HttpMethod.Post, "/v1/videos", big.ToJsonString());
        var id = created!["id"]!.GetValue<string>();
        var started = await WanTinyWorker.WaitAsync(jobs.Server, id, "in_progress");

        var validation = Validate(jobs.Server, Form("v2", jobs.Frames.Manifest, jobs.Frames.Content, "frames"));
        await WaitForStepAsync(id, started["step"]!.GetValue<int>() + 3);
        var waited = !validation.IsCompleted;
        await JsonHttp.Send(jobs.Server.Inference, HttpMethod.Delete, $"/v1/videos/{id}");
        var (status, body) = await validation;

        Assert.True(waited, "the validation ran while a job held the model");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(body!["verdict"]!["accept"]!.GetValue<bool>(), body.ToJsonString());
        Assert.True(body["verdict"]!["bit_exact"]!.GetValue<bool>());
        Assert.NotNull(body["timings"]!["regenerate_ms"]);
    }

    [Theory]
    [InlineData("mode", "mode")]
    [InlineData("mode=v3", "mode")]
    [InlineData("manifest", "manifest")]
    [InlineData("manifest={", "manifest")]
    [InlineData("manifest.job_spec", "manifest.job_spec")]
    [InlineData("manifest.job_spec.width=\"64\"", "manifest.job_spec.width")]
    [InlineData("manifest.hashes.phash", "manifest.hashes.phash")]
    [InlineData("video", "video")]
    [InlineData("video=text", "video")]
    [InlineData("format=webm", "format")]
    [InlineData("colour=blue", "colour")]
    [InlineData("beacon=block", "beacon")]
    [InlineData("video=garbage", "video")]
    public async Task Malformed_fields_are_refused_naming_them(string change, string field)
    {
        var manifest = JsonNode.Parse(jobs.Mp4.Manifest.ToJsonString())!.AsObject();
        var fields = new Dictionary<string, string?> { ["mode"] = "v0", ["manifest"] = null, ["format"] = "mp4" };
        var video = jobs.Mp4.Content;
        var (name, value) = change.Split('=', 2) is [var n, var v] ? (n, v) : (change, null);
        if (name.StartsWith("manifest.", StringComparison.Ordinal))
        {
            var path = name.Split('.')[1..];
            var parent = path[..^1].Aggregate((JsonNode)manifest, (node, key) => node[key]!);
            if (value is null) parent.AsObject().Remove(path[^1]);
            else parent[path[^1]] = JsonNode.Parse(value);
        }
        else if (name == "video" && value == "garbage") video = Encoding.ASCII.GetBytes("not a video at all");
        else if (name == "video") video = null;
        else fields[name] = value;
        fields["manifest"] = name == "manifest" ? value : manifest.ToJsonString();

        using var form = new MultipartFormDataContent();
        foreach (var (key, text) in fields.Where(f => f.Value is not null)) form.Add(new StringContent(text!), key);
        if (video is not null) form.Add(new ByteArrayContent(video), "video", "video.mp4");
        if (change == "video=text") form.Add(new StringContent("inline"), "video");

        var (status, body) = await Validate(jobs.Server, form);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
        Assert.Equal(field, string.Join('.', body!["detail"]!.AsArray().Select(d => string.Join('.', d!["loc"]!.AsArray().Select(l => l!.GetValue<string>()))).First()));
    }

    [Fact]
    public async Task V1_needs_its_commitment_latent_reveal_and_beacon_and_only_v1_takes_them()
    {
        var challenge = await ChallengeAsync(jobs.Frames.Manifest, "block 0x1f", count: null);
        var garbage = Encoding.ASCII.GetBytes("not a safetensors file");

        var (missing, missingBody) = await Validate(jobs.Server, Form("v1", jobs.Frames.Manifest, jobs.Frames.Content, "frames"));
        var (extra, extraBody) = await Validate(jobs.Server, Form("v0", jobs.Frames.Manifest, jobs.Frames.Content, "frames", challenge));
        var (badCommitment, badCommitmentBody) = await Validate(jobs.Server,
            Form("v1", jobs.Frames.Manifest, jobs.Frames.Content, "frames", challenge with { Commitment = "{\"version\": 1}" }));
        var (badCount, badCountBody) = await Validate(jobs.Server, Form("v1", jobs.Frames.Manifest, jobs.Frames.Content, "frames", challenge with { Count = "5" }));
        var (badLatent, badLatentBody) = await Validate(jobs.Server, Form("v1", jobs.Frames.Manifest, jobs.Frames.Content, "frames", challenge with { FinalLatent = garbage }));
        var (badReveal, badRevealBody) = await Validate(jobs.Server, Form("v1", jobs.Frames.Manifest, jobs.Frames.Content, "frames", challenge with { Reveal = garbage }));

        Assert.Equal(Enumerable.Repeat(HttpStatusCode.UnprocessableEntity, 6), [missing, extra, badCommitment, badCount, badLatent, badReveal]);
        Assert.Equal(["final_latent", "reveal", "commitment", "beacon"], Fields(missingBody));
        Assert.Equal(["commitment", "final_latent", "reveal", "beacon"], Fields(extraBody));
        Assert.Equal(["commitment"], Fields(badCommitmentBody));
        Assert.Equal(["count"], Fields(badCountBody));
        Assert.Equal(["final_latent"], Fields(badLatentBody));
        Assert.Equal(["reveal"], Fields(badRevealBody));
    }

    [Fact]
    public async Task A_json_body_is_refused_and_a_spec_this_node_cannot_replay_is_a_conflict()
    {
        var manifest = JsonNode.Parse(jobs.Frames.Manifest.ToJsonString())!.AsObject();
        manifest["job_spec"]!["weights"] = new JsonArray(new JsonObject { ["path"] = "vae/other.safetensors", ["sha256"] = new string('0', 64) });

        var (json, jsonBody) = await JsonHttp.Send(jobs.Server.Inference, HttpMethod.Post, "/v1/videos/validations", "{\"mode\": \"v0\"}");
        var (conflict, conflictBody) = await Validate(jobs.Server, Form("v2", manifest, jobs.Frames.Content, "frames"));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, json);
        Assert.Equal(["body"], Fields(jsonBody));
        Assert.Equal(HttpStatusCode.Conflict, conflict);
        Assert.Equal("manifest.job_spec.weights", conflictBody!["error"]!["param"]!.GetValue<string>());
    }

    [Fact]
    public async Task An_oversized_upload_is_413_naming_it()
    {
        await using var server = await WanTinyWorker.StartAsync("--VideoValidation:MaxUploadBytes", "100000");

        // wan-tiny's raw frames are 110,592 bytes.
        var (status, body) = await Validate(server, Form("v0", jobs.Frames.Manifest, jobs.Frames.Content, "frames"));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Equal("video", body!["error"]!["param"]!.GetValue<string>());
    }

    [Fact]
    public async Task Without_a_video_model_v0_answers_and_v1_v2_are_503()
    {
        await using var server = await WanTinyWorker.StartAsync();
        await JsonHttp.Send(server.Management, HttpMethod.Post, "/api/v1/stop");
        await JsonHttp.Send(server.Management, HttpMethod.Post, "/api/v1/inference/down");

        var (v0, _) = await Validate(server, Form("v0", jobs.Frames.Manifest, jobs.Frames.Content, "frames"));
        var (v2, body) = await Validate(server, Form("v2", jobs.Frames.Manifest, jobs.Frames.Content, "frames"));

        Assert.Equal(HttpStatusCode.OK, v0);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, v2);
        Assert.Equal("No vLLM backend available", body!["detail"]!.GetValue<string>());
    }

    private async Task WaitForStepAsync(string id, int step)
    {
        while (true)
        {
            var (_, video) = await JsonHttp.Send(jobs.Server.Inference, HttpMethod.Get, $"/v1/videos/{id}");
            Assert.Equal("in_progress", video!["status"]!.GetValue<string>());
            if (video["step"]!.GetValue<int>() >= step) return;
            await Task.Delay(50, Ct);
        }
    }

    private static async Task<(JsonObject Manifest, byte[] Content)> RunAsync(WorkerServer server, string format)
    {
        var (_, created) = await JsonHttp.Send(server.Inference, HttpMethod.Post, "/v1/videos", WanTinyWorker.ReferenceJob(format).ToJsonString());
        var id = created!["id"]!.GetValue<string>();
        var manifest = (await WanTinyWorker.WaitAsync(server, id, "completed")).AsObject();
        using var content = await server.Inference.GetAsync($"/v1/videos/{id}/content", Ct);
        return (manifest, await content.Content.ReadAsByteArrayAsync(Ct));
    }

    /// <summary>V1's inputs as a validator collects them from the executor: its commitment, final latent and reveal for a beacon.</summary>
    public sealed record Challenge(string Commitment, byte[] FinalLatent, byte[] Reveal, string Beacon, string? Count);

    /// <summary>The job's commitment, final latent and the reveal <paramref name="beacon"/> selects, from the worker that ran it.</summary>
    private async Task<Challenge> ChallengeAsync(JsonObject manifest, string beacon, int? count)
    {
        var id = manifest["id"]!.GetValue<string>();
        var query = $"beacon={Uri.EscapeDataString(beacon)}" + (count is { } n ? $"&count={n}" : "");
        return new Challenge(
            await jobs.Server.Inference.GetStringAsync($"/v1/videos/{id}/commitment", Ct),
            await jobs.Server.Inference.GetByteArrayAsync($"/v1/videos/{id}/final_latent", Ct),
            await jobs.Server.Inference.GetByteArrayAsync($"/v1/videos/{id}/challenges?{query}", Ct),
            beacon,
            count?.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    private static MultipartFormDataContent Form(string mode, JsonObject manifest, byte[] video, string format, Challenge? challenge = null)
    {
        var form = new MultipartFormDataContent
        {
            { new StringContent(mode), "mode" },
            { new StringContent(manifest.ToJsonString()), "manifest" },
            { new StringContent(format), "format" },
            { new ByteArrayContent(video), "video", "video" },
        };
        if (challenge is null) return form;
        form.Add(new StringContent(challenge.Commitment), "commitment");
        form.Add(new ByteArrayContent(challenge.FinalLatent), "final_latent", "x0.safetensors");
        form.Add(new ByteArrayContent(challenge.Reveal), "reveal", "reveal.safetensors");
        form.Add(new StringContent(challenge.Beacon), "beacon");
        if (challenge.Count is not null) form.Add(new StringContent(challenge.Count), "count");
        return form;
    }

    private static async Task<(HttpStatusCode Status, JsonNode? Body)> Validate(WorkerServer server, MultipartFormDataContent form)
    {
        using (form)
        using (var response = await server.Inference.PostAsync("/v1/videos/validations", form, Ct))
        {
            var text = await response.Content.ReadAsStringAsync(Ct);
            return (response.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
        }
    }

    private static string[] FailedChecks(JsonNode body) =>
        [.. body["checks"]!.AsArray().Where(c => !c!["pass"]!.GetValue<bool>()).Select(c => c!["name"]!.GetValue<string>())];

    private static string[] Fields(JsonNode? body) =>
        [.. body!["detail"]!.AsArray().Select(d => string.Join('.', d!["loc"]!.AsArray().Select(l => l!.GetValue<string>())))];
}

using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using MLNode.Engines.Dit;
using MLNode.Engines.Dit.Trajectory;
using MLNode.Protocol.Diffusion;
using MLNode.Runtime.Checkpoints;
using MLNode.Worker.Api;
using MLNode.Worker.Node;
using MLNode.Worker.Video;

namespace MLNode.Worker.Tests;

/// <summary>
/// The executor's verification routes on a worker serving wan-tiny: a completed job's commitment, a beacon's step reveal
/// and its final latent, checked by the verifier on the worker's own model (every error 0 on the same device); the
/// status codes for unknown, unfinished and expired jobs and for bad beacons and counts.
/// </summary>
public sealed class VideoVerificationApiTests : IAsyncLifetime
{
    private readonly string _outputDir = Path.Combine(Path.GetTempPath(), $"mlnode-videos-{Guid.NewGuid():N}");
    private WorkerServer _server = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _server = await WanTinyWorker.StartAsync("--Video:OutputDir", _outputDir, "--Video:MaxSteps", "60");

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        if (Directory.Exists(_outputDir)) Directory.Delete(_outputDir, recursive: true);
    }

    [Fact]
    public async Task A_completed_jobs_commitment_reveal_and_final_latent_verify_on_the_workers_model()
    {
        var (id, done) = await CompletedJobAsync();

        using var commitmentResponse = await _server.Inference.GetAsync($"/v1/videos/{id}/commitment", Ct);
        Assert.Equal(HttpStatusCode.OK, commitmentResponse.StatusCode);
        Assert.Equal("application/json", commitmentResponse.Content.Headers.ContentType!.MediaType);
        var commitment = TrajectoryCommitment.Parse(await commitmentResponse.Content.ReadAsByteArrayAsync(Ct));
        Assert.Equal(done["job_id"]!.GetValue<string>(), commitment.JobId);
        Assert.Equal(done["trajectory"]!["merkle_root"]!.GetValue<string>(), Convert.ToHexStringLower(commitment.MerkleRoot));
        Assert.Equal(done["trajectory"]!["h_final"]!.GetValue<string>(), Convert.ToHexStringLower(commitment.FinalHash));
        Assert.Equal(4, commitment.Steps);

        var spec = WanJobSpec.Parse(JsonDocument.Parse(done["job_spec"]!.ToJsonString()).RootElement);
        var executor = (WanExecutor)_server.Services.GetRequiredService<NodeController>().Model!;
        var verifier = new StepRevealVerifier(executor.Pipeline, executor.Planner.Model);
        using (var reveal = await RevealAsync(id, "block 0xabc", count: 4))
        {
            var verification = verifier.Verify(spec, commitment, reveal, "block 0xabc", 4, Ct);
            Assert.Empty(verification.Problems);
            Assert.True(verification.ChallengesAsSelected);
            Assert.Equal([0, 1, 2, 3], verification.Steps.Select(s => s.Step));
            Assert.All(verification.Steps, s =>
            {
                Assert.True(s.ProofsVerify && s.HashesMatch);
                Assert.Equal((0.0, 0.0, 0.0, 0.0), (s.VelocityError, s.StepError, s.ReplayError, s.LastSampleError));
            });
        }
        // Without a count the worker reveals ChallengeSteps (2): one step of each expert.
        using (var reveal = await RevealAsync(id, "block 0xdef", count: null))
            Assert.Equal([0, 1], reveal.Manifest.Challenged.Select(k => commitment.Records[k].Expert));

        using var finalResponse = await _server.Inference.GetAsync($"/v1/videos/{id}/final_latent", Ct);
        Assert.Equal(HttpStatusCode.OK, finalResponse.StatusCode);
        using var final = await SaveAsync(finalResponse);
        using var x0 = final.Load(StepStateStore.FinalLatent);
        Assert.Equal(new FinalLatentVerification(true, 0), StepRevealVerifier.VerifyFinalLatent(commitment, x0));

        // Each reveal is written for its request and deleted once sent.
        await PollAsync(() => Directory.GetFiles(Path.Combine(_outputDir, id), "reveal-*").Length == 0, "the reveal files to be deleted");
    }

    [Fact]
    public async Task Unknown_ids_are_404_and_unfinished_jobs_409()
    {
        foreach (var route in new[] { "commitment", "challenges?beacon=x", "final_latent" })
            Assert.Equal(HttpStatusCode.NotFound, (await JsonHttp.Send(_server.Inference, HttpMethod.Get, $"/v1/videos/video_none/{route}")).Status);

        var job = WanTinyWorker.ReferenceJob("frames");
        // Long enough on the CPU to be caught running: 256×256, 33 frames, 60 steps.
        (job["size"], job["num_frames"], job["num_inference_steps"]) = ("256x256", 33, 60);
        var running = await CreateAsync(job);
        var queued = await CreateAsync(WanTinyWorker.ReferenceJob("frames"));
        await WanTinyWorker.WaitAsync(_server, running, "in_progress");

        foreach (var id in new[] { running, queued })
        foreach (var route in new[] { "commitment", "challenges?beacon=x", "final_latent" })
        {
            var (status, body) = await JsonHttp.Send(_server.Inference, HttpMethod.Get, $"/v1/videos/{id}/{route}");
            Assert.Equal(HttpStatusCode.Conflict, status);
            Assert.Equal("id", body!["error"]!["param"]!.GetValue<string>());
        }
        await JsonHttp.Send(_server.Inference, HttpMethod.Delete, $"/v1/videos/{running}");
        await WanTinyWorker.WaitAsync(_server, queued, "completed");
    }

    [Theory]
    [InlineData("", "beacon")]
    [InlineData("?beacon=", "beacon")]
    [InlineData("?beacon=a&beacon=b", "beacon")]
    [InlineData("?beacon=a&count=0", "count")]
    [InlineData("?beacon=a&count=5", "count")]
    [InlineData("?beacon=a&count=two", "count")]
    [InlineData("?beacon=a&count=-1", "count")]
    [InlineData("?beacon=a&count=1&count=2", "count")]
    public async Task Bad_beacons_and_counts_are_400_naming_them(string query, string param)
    {
        var (id, _) = await CompletedJobAsync();

        var (status, body) = await JsonHttp.Send(_server.Inference, HttpMethod.Get, $"/v1/videos/{id}/challenges{query}");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(param, body!["error"]!["param"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_beacon_over_the_limit_is_400()
    {
        var (id, _) = await CompletedJobAsync();
        var beacon = new string('b', VideoVerificationEndpoint.MaxBeaconBytes + 1);

        var (status, body) = await JsonHttp.Send(_server.Inference, HttpMethod.Get, $"/v1/videos/{id}/challenges?beacon={beacon}");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("beacon", body!["error"]!["param"]!.GetValue<string>());
    }

    [Fact]
    public async Task After_the_challenge_window_the_states_are_gone_and_the_output_stays()
    {
        await _server.DisposeAsync();
        _server = await WanTinyWorker.StartAsync("--Video:OutputDir", _outputDir, "--Video:ChallengeWindow", "00:00:01", "--Video:ChallengeSweepInterval", "00:00:00.100");
        var (id, done) = await CompletedJobAsync();
        var steps = Path.Combine(_outputDir, id, VideoJobQueue.StepStatesFolder);
        Assert.NotNull(done["trajectory"]!["challenge_window_ends_at"]);

        await PollAsync(() => !Directory.Exists(steps), "the sweep to delete the sampler states");

        Assert.Equal(HttpStatusCode.Gone, (await JsonHttp.Send(_server.Inference, HttpMethod.Get, $"/v1/videos/{id}/challenges?beacon=x")).Status);
        Assert.Equal(HttpStatusCode.Gone, (await JsonHttp.Send(_server.Inference, HttpMethod.Get, $"/v1/videos/{id}/final_latent")).Status);
        Assert.Equal(HttpStatusCode.OK, (await JsonHttp.Send(_server.Inference, HttpMethod.Get, $"/v1/videos/{id}/commitment")).Status);
        using var content = await _server.Inference.GetAsync($"/v1/videos/{id}/content", Ct);
        Assert.Equal(HttpStatusCode.OK, content.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await JsonHttp.Send(_server.Inference, HttpMethod.Delete, $"/v1/videos/{id}")).Status);
        Assert.False(Directory.Exists(Path.Combine(_outputDir, id)));
    }

    private async Task<(string Id, JsonNode Done)> CompletedJobAsync()
    {
        var id = await CreateAsync(WanTinyWorker.ReferenceJob("frames"));
        var done = await WanTinyWorker.WaitAsync(_server, id, "completed");
        Assert.True(File.Exists(Path.Combine(_outputDir, id, VideoJobQueue.StepStatesFolder, "final.safetensors")));
        return (id, done);
    }

    private async Task<string> CreateAsync(JsonObject job)
    {
        var (status, created) = await JsonHttp.Send(_server.Inference, HttpMethod.Post, "/v1/videos", job.ToJsonString());
        Assert.True(status == HttpStatusCode.OK, created?.ToJsonString());
        return created!["id"]!.GetValue<string>();
    }

    private async Task<RevealBundle> RevealAsync(string id, string beacon, int? count)
    {
        using var response = await _server.Inference.GetAsync(
            $"/v1/videos/{id}/challenges?beacon={Uri.EscapeDataString(beacon)}{(count is { } c ? $"&count={c}" : "")}", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var path = Path.Combine(_outputDir, $"received-{Guid.NewGuid():N}.safetensors");
        await File.WriteAllBytesAsync(path, await response.Content.ReadAsByteArrayAsync(Ct), Ct);
        var reveal = RevealBundle.Open(path);
        Assert.Equal(beacon, reveal.Manifest.Beacon);
        return reveal;
    }

    private async Task<SafetensorsFile> SaveAsync(HttpResponseMessage response)
    {
        var path = Path.Combine(_outputDir, $"received-{Guid.NewGuid():N}.safetensors");
        await File.WriteAllBytesAsync(path, await response.Content.ReadAsByteArrayAsync(Ct), Ct);
        return SafetensorsFile.Open(path);
    }

    private static async Task PollAsync(Func<bool> condition, string what)
    {
        for (var i = 0; i < 200 && !condition(); i++) await Task.Delay(50, Ct);
        Assert.True(condition(), $"waited 10 s for {what}");
    }
}

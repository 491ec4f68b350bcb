using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using MLNode.Protocol;
using MLNode.Protocol.OpenAi;
using MLNode.Protocol.Validation;

namespace MLNode.Worker.Tests;

/// <summary>/v1/chat/completions end to end on the demo model through the real engine, as executor and as validator.</summary>
public sealed class ChatCompletionsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<WorkerServer> StartDemo(params string[] args)
    {
        var shipped = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "models.json"));
        var worker = await WorkerServer.StartAsync(_ => shipped, null, args);
        var (status, _) = await JsonHttp.Send(worker.Management, HttpMethod.Post, "/api/v1/inference/up", """{"model":"mlnode/demo-qwen3"}""");
        Assert.Equal(HttpStatusCode.OK, status);
        return worker;
    }

    private const string Executor = """
        {"model":"mlnode/demo-qwen3","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Grüße, 世界!"}],
         "max_tokens":12,"temperature":0.8,"top_p":0.95,"seed":42,"logprobs":true,"top_logprobs":5,"skip_special_tokens":false,"return_token_ids":true,
         "logprobs_mode":"processed_logprobs"}
        """;

    [Fact]
    public async Task Executor_output_replayed_by_a_validator_has_similarity_one()
    {
        await using var worker = await StartDemo();
        var (status, executed) = await JsonHttp.Send(worker.Inference, HttpMethod.Post, "/v1/chat/completions", Executor);
        Assert.Equal(HttpStatusCode.OK, status);
        var response = executed.Deserialize<ChatCompletionResponse>(GonkaJson.Options)!;
        var content = response.Choices[0].Logprobs!.Content;
        Assert.Equal(12, content.Count);
        Assert.All(content, c => Assert.True(int.TryParse(c.Token, out _), $"token '{c.Token}' is not a decimal id"));
        Assert.All(content, c => Assert.Equal(5, c.TopLogprobs.Count));
        Assert.Equal(response.Choices[0].TokenIds!.Select(t => t.ToString()), content.Select(c => c.Token));
        Assert.Equal(12, response.Usage!.CompletionTokens);

        // Same seed, same request: the same tokens (seeded sampling is reproducible).
        var (_, again) = await JsonHttp.Send(worker.Inference, HttpMethod.Post, "/v1/chat/completions", Executor);
        Assert.Equal(response.Choices[0].TokenIds, again.Deserialize<ChatCompletionResponse>(GonkaJson.Options)!.Choices[0].TokenIds);

        // The validator replays with enforced_tokens as dapi builds them from the stored request (dapi sets the
        // chain's logprobs_mode on every executor request), with another seed.
        var replay = JsonNode.Parse(Executor)!.AsObject();
        replay["seed"] = 7;
        replay["enforced_tokens"] = JsonSerializer.SerializeToNode(EnforcedTokens.FromContent(content), GonkaJson.Options);
        var (replayStatus, validated) = await JsonHttp.Send(worker.Inference, HttpMethod.Post, "/v1/chat/completions", replay.ToJsonString());
        Assert.Equal(HttpStatusCode.OK, replayStatus);
        var validatorContent = validated.Deserialize<ChatCompletionResponse>(GonkaJson.Options)!.Choices[0].Logprobs!.Content;
        var comparison = LogprobComparison.Compare(content, validatorContent);
        Assert.Equal(1.0, comparison.Similarity);
        Assert.True(comparison.Passes(0.94));
    }

    /// <summary>
    /// <c>--tensor-parallel-size 2</c> on the CPU serves the demo model as two ranks over the CPU communicator: the same
    /// greedy tokens as one rank, logprobs within 1e-4 (float32 sums split in two, ~1e-7 apart; see
    /// TensorParallelTests), and a validator on the whole model accepts the sharded executor's output.
    /// </summary>
    [Fact]
    public async Task Two_tensor_parallel_ranks_serve_the_same_completion_as_one()
    {
        const string greedy = """
            {"model":"mlnode/demo-qwen3","messages":[{"role":"user","content":"Grüße, 世界!"}],"max_tokens":10,"temperature":0,
             "logprobs":true,"top_logprobs":5,"return_token_ids":true}
            """;
        var shipped = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "models.json"));
        await using var sharded = await WorkerServer.StartAsync(_ => shipped, null, []);
        var (status, up) = await JsonHttp.Send(sharded.Management, HttpMethod.Post, "/api/v1/inference/up",
            """{"model":"mlnode/demo-qwen3","additional_args":["--tensor-parallel-size","2"]}""");
        Assert.Equal(HttpStatusCode.OK, status);
        var (_, parallelBody) = await JsonHttp.Send(sharded.Inference, HttpMethod.Post, "/v1/chat/completions", greedy);
        var parallel = parallelBody.Deserialize<ChatCompletionResponse>(GonkaJson.Options)!.Choices[0];

        await using var whole = await StartDemo();
        var (_, wholeBody) = await JsonHttp.Send(whole.Inference, HttpMethod.Post, "/v1/chat/completions", greedy);
        var single = wholeBody.Deserialize<ChatCompletionResponse>(GonkaJson.Options)!.Choices[0];

        Assert.Equal(10, parallel.TokenIds!.Count);
        Assert.Equal(single.TokenIds, parallel.TokenIds);
        foreach (var (p, w) in parallel.Logprobs!.Content.Zip(single.Logprobs!.Content))
            Assert.True(Math.Abs(p.Logprob - w.Logprob) <= 1e-4, $"token {p.Token}: {p.Logprob} vs {w.Logprob}");
        Assert.True(LogprobComparison.Compare(single.Logprobs.Content, parallel.Logprobs.Content).Passes(0.99));
    }

    /// <summary>
    /// The fast validator mode scores the claimed output in one forward: other GEMM shapes than step-by-step
    /// decoding, so float32 rounding differs in the last bits; measured similarity 0.9999999992 here (CPU, fp32), asserted
    /// above 0.9999 (the network's thresholds are 0.90–0.98).
    /// </summary>
    [Fact]
    public async Task Teacher_forced_replay_scores_the_executor_output_in_one_forward()
    {
        await using var worker = await StartDemo("--replay-mode", "teacher_forced");
        var (_, executed) = await JsonHttp.Send(worker.Inference, HttpMethod.Post, "/v1/chat/completions", Executor);
        var content = executed.Deserialize<ChatCompletionResponse>(GonkaJson.Options)!.Choices[0].Logprobs!.Content;
        var replay = JsonNode.Parse(Executor)!.AsObject();
        replay["enforced_tokens"] = JsonSerializer.SerializeToNode(EnforcedTokens.FromContent(content), GonkaJson.Options);
        var (status, validated) = await JsonHttp.Send(worker.Inference, HttpMethod.Post, "/v1/chat/completions", replay.ToJsonString());
        Assert.Equal(HttpStatusCode.OK, status);
        var validatorContent = validated.Deserialize<ChatCompletionResponse>(GonkaJson.Options)!.Choices[0].Logprobs!.Content;
        Assert.Equal(content.Select(c => c.Token), validatorContent.Select(c => c.Token));
        var similarity = LogprobComparison.Compare(content, validatorContent).Similarity;
        Assert.True(similarity > 0.9999, $"teacher-forced similarity {similarity:R}");
    }

    [Fact]
    public async Task Streaming_sends_role_deltas_finish_usage_and_done()
    {
        await using var worker = await StartDemo();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent("""{"messages":[{"role":"user","content":"Hi"}],"max_tokens":4,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}""",
                System.Text.Encoding.UTF8, "application/json"),
        };
        using var response = await worker.Inference.SendAsync(request, Ct);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var events = (await response.Content.ReadAsStringAsync(Ct)).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("data: [DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonNode.Parse(e["data: ".Length..])!).ToList();
        Assert.Equal("assistant", (string?)chunks[0]["choices"]![0]!["delta"]!["role"]);
        Assert.Equal("length", (string?)chunks[^2]["choices"]![0]!["finish_reason"]);
        Assert.Equal(4, (int)chunks[^1]["usage"]!["completion_tokens"]!);
    }

    [Theory]
    [InlineData("""{"messages":"hi"}""", 422, "body.messages")]
    [InlineData("""{"messages":[{"role":"user","content":"x"}],"temperature":-1}""", 422, "body.temperature")]
    [InlineData("""{"messages":[{"role":"user","content":"x"}],"top_logprobs":21,"logprobs":true}""", 422, "body.top_logprobs")]
    [InlineData("""{"messages":[{"role":"user","content":"x"}],"max_tokens":100000}""", 400, "max_tokens")]
    [InlineData("""{"messages":[{"role":"user","content":"x"}],"enforced_tokens":{"tokens":[{"token":"abc"}]}}""", 422, "body.enforced_tokens")]
    [InlineData("""{"messages":[{"role":"user","content":"x"}],"enforced_tokens":{"tokens":[{"token":"99999"}]}}""", 422, "body.enforced_tokens.tokens.0.token")]
    [InlineData("""{"model":"other/model","messages":[{"role":"user","content":"x"}]}""", 404, "model")]
    public async Task Bad_requests_get_a_4xx_naming_the_field(string json, int expected, string field)
    {
        await using var worker = await StartDemo();
        var (status, body) = await JsonHttp.Send(worker.Inference, HttpMethod.Post, "/v1/chat/completions", json);
        Assert.Equal(expected, (int)status);
        Assert.Contains(field, body!.ToJsonString());
        // The node still serves.
        var (ok, _) = await JsonHttp.Send(worker.Inference, HttpMethod.Post, "/v1/chat/completions", """{"messages":[{"role":"user","content":"x"}],"max_tokens":1}""");
        Assert.Equal(HttpStatusCode.OK, ok);
    }

    [Fact]
    public async Task Completions_take_text_or_token_ids_and_return_decimal_id_logprobs()
    {
        await using var worker = await StartDemo();
        var (status, text) = await JsonHttp.Send(worker.Inference, HttpMethod.Post, "/v1/completions",
            """{"prompt":"Hello","max_tokens":6,"temperature":0,"logprobs":3,"return_token_ids":true}""");
        Assert.Equal(HttpStatusCode.OK, status);
        var choice = text!["choices"]![0]!;
        Assert.Equal("length", (string?)choice["finish_reason"]);
        var tokens = choice["logprobs"]!["tokens"]!.AsArray().Select(t => (string)t!).ToList();
        Assert.Equal(6, tokens.Count);
        Assert.Equal(choice["token_ids"]!.AsArray().Select(t => ((int)t!).ToString()), tokens);
        Assert.All(choice["logprobs"]!["top_logprobs"]!.AsArray(), top => Assert.Equal(3, top!.AsObject().Count));

        // The same prompt as token ids gives the same greedy continuation.
        var promptIds = choice["prompt_token_ids"]!.ToJsonString();
        var (_, ids) = await JsonHttp.Send(worker.Inference, HttpMethod.Post, "/v1/completions",
            $$"""{"prompt":{{promptIds}},"max_tokens":6,"temperature":0,"return_token_ids":true}""");
        Assert.Equal(choice["token_ids"]!.ToJsonString(), ids!["choices"]![0]!["token_ids"]!.ToJsonString());

        var (bad, body) = await JsonHttp.Send(worker.Inference, HttpMethod.Post, "/v1/completions", """{"prompt":[1,2,70000]}""");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, bad);
        Assert.Contains("body.prompt", body!.ToJsonString());
    }
}

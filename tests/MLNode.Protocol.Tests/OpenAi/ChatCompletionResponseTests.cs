using System.Text.Json;
using System.Text.Json.Nodes;
using MLNode.Protocol.Management;
using MLNode.Protocol.OpenAi;
using MLNode.Protocol.Tests.Validation;

namespace MLNode.Protocol.Tests.OpenAi;

public class ChatCompletionResponseTests
{
    [Fact]
    public void RecordedResponse_ReadsAndWritesBackItsChoice()
    {
        var response = ValidationFixtures.Response(ValidationFixtures.HonestExecutor);

        var choice = Assert.Single(response.Choices);
        Assert.Equal("length", choice.FinishReason);
        Assert.Equal(100, choice.Logprobs!.Content.Count);
        Assert.Equal(new Usage(218, 100, 318), response.Usage);
        Assert.Equal(-0.004675646312534809, choice.Logprobs.Content[0].Logprob);
        Assert.Equal(3, choice.Logprobs.Content[0].TopLogprobs.Count);

        // vLLM dumps every field; only the fields this contract models (not prompt_logprobs) come back.
        var recorded = JsonNode.Parse(File.ReadAllText(ValidationFixtures.Path(ValidationFixtures.HonestExecutor)))!;
        var written = JsonNode.Parse(JsonSerializer.Serialize(response, GonkaJson.Options))!;
        var recordedChoice = recorded["choices"]![0]!.AsObject();
        recordedChoice["token_ids"] = null;
        Assert.True(JsonNode.DeepEquals(recordedChoice, written["choices"]![0]), written["choices"]![0]!.ToJsonString());
        Assert.True(JsonNode.DeepEquals(recorded["usage"], written["usage"]));
    }

    [Fact]
    public void LogprobForTokenId_WritesTheIdAsTokenAndItsDigitsAsBytes()
    {
        var logprob = ChatCompletionLogprob.ForTokenId(24, -0.25, [TopLogprob.ForTokenId(24, -0.25), TopLogprob.ForTokenId(1, double.NegativeInfinity)]);

        var json = JsonSerializer.Serialize(logprob, GonkaJson.Options);

        Assert.Equal("""{"token":"24","logprob":-0.25,"bytes":[50,52],"top_logprobs":[{"token":"24","logprob":-0.25,"bytes":[50,52]},{"token":"1","logprob":-9999,"bytes":[49]}]}""", json);
    }

    [Theory]
    [InlineData(double.NegativeInfinity, -9999.0)]
    [InlineData(double.NaN, -9999.0)]
    [InlineData(-12345.0, -9999.0)]
    [InlineData(-9999.0, -9999.0)]
    [InlineData(-23.125, -23.125)]
    [InlineData(0.0, 0.0)]
    public void Logprob_FloorsAtTheWireInfinity(double logprob, double written)
    {
        Assert.Equal(written, LogprobWire.Logprob(logprob));
    }

    [Fact]
    public void Chunk_WritesFinishReasonWhileNullAndOmitsUnsetDeltaFields()
    {
        var chunk = new ChatCompletionChunk("chatcmpl-1", 1742626074, "Qwen/Qwen2.5-7B-Instruct",
            [new ChatChunkChoice(0, new ChatDelta(Content: "9"),
                new ChatLogprobs([ChatCompletionLogprob.ForTokenId(24, 0.0, [TopLogprob.ForTokenId(24, 0.0), TopLogprob.ForTokenId(23, -23.125)])]))]);

        var json = JsonSerializer.Serialize(chunk, GonkaJson.OmitNullsOptions);

        Assert.Equal("""{"id":"chatcmpl-1","created":1742626074,"model":"Qwen/Qwen2.5-7B-Instruct","choices":[{"index":0,"delta":{"content":"9"},"logprobs":{"content":[{"token":"24","logprob":0,"bytes":[50,52],"top_logprobs":[{"token":"24","logprob":0,"bytes":[50,52]},{"token":"23","logprob":-23.125,"bytes":[50,51]}]}]},"finish_reason":null}],"object":"chat.completion.chunk"}""", json);
    }

    [Fact]
    public void UsageChunk_HasNoChoices()
    {
        var json = JsonSerializer.Serialize(new ChatCompletionChunk("chatcmpl-1", 1, "m", [], new Usage(12, 3, 15)), GonkaJson.OmitNullsOptions);

        Assert.Equal("""{"id":"chatcmpl-1","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15},"object":"chat.completion.chunk"}""", json);
    }

    [Fact]
    public void Error_IsNestedUnderErrorAndNamesTheFields()
    {
        var error = OpenAiErrorResponse.FromFieldErrors([new FieldError("body.top_p", "must be in (0, 1]"), new FieldError("body.n", "must be 1")]);

        Assert.Equal("""{"error":{"message":"body.top_p: must be in (0, 1]; body.n: must be 1","type":"BadRequestError","code":400,"param":"body.top_p"}}""",
            JsonSerializer.Serialize(error, GonkaJson.Options));
    }

    [Fact]
    public void CompletionResponse_WritesTheLegacyLogprobLayout()
    {
        var response = new CompletionResponse("cmpl-1", 1, "m",
            [new CompletionChoice(0, "9", new CompletionLogprobs([0], [-0.5], ["24"], [new Dictionary<string, double> { ["24"] = -0.5 }]), "stop")],
            new Usage(3, 1, 4));

        var written = JsonNode.Parse(JsonSerializer.Serialize(response, GonkaJson.Options))!;

        Assert.Equal("text_completion", (string?)written["object"]);
        Assert.Equal(-0.5, (double)written["choices"]![0]!["logprobs"]!["top_logprobs"]![0]!["24"]!);
    }
}

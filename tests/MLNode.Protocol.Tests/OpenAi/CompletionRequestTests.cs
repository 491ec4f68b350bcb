using System.Text.Json;
using System.Text.Json.Nodes;
using MLNode.Protocol.OpenAi;

namespace MLNode.Protocol.Tests.OpenAi;

public class CompletionRequestTests
{
    private static CompletionRequest Read(string json) =>
        JsonSerializer.Deserialize<CompletionRequest>(json, GonkaJson.Options)!;

    [Theory]
    [InlineData("""{"prompt": "Once upon", "logprobs": 5, "max_tokens": 16, "temperature": 0.0, "echo": true, "skip_special_tokens": false}""")]
    [InlineData("""{"prompt": [9707, 11, 1879], "logprobs": 0, "return_token_ids": true, "stop": ["."], "skip_special_tokens": true}""")]
    public void Prompt_RoundTripsInTheFormItWasRead(string json)
    {
        var request = Read(json);

        Assert.Empty(request.Validate());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(json), JsonNode.Parse(JsonSerializer.Serialize(request, GonkaJson.OmitNullsOptions))));
    }

    [Fact]
    public void Prompt_TokenIdsAreIds()
    {
        Assert.Equal([9707, 11, 1879], Read("""{"prompt": [9707, 11, 1879]}""").Prompt.TokenIds!);
    }

    [Theory]
    [InlineData("""{"prompt": ["a", "b"]}""")]
    [InlineData("""{"prompt": [[1, 2]]}""")]
    [InlineData("""{"prompt": 7}""")]
    [InlineData("""{"logprobs": 1}""")]
    public void Prompt_BatchesAndOtherShapesAreUnreadable(string json)
    {
        Assert.Throws<JsonException>(() => Read(json));
    }

    [Theory]
    [InlineData("""{"prompt": "a", "logprobs": 21}""", "body.logprobs")]
    [InlineData("""{"prompt": "a", "logprobs": -1}""", "body.logprobs")]
    [InlineData("""{"prompt": ""}""", "body.prompt")]
    [InlineData("""{"prompt": []}""", "body.prompt")]
    [InlineData("""{"prompt": [5, -1]}""", "body.prompt")]
    [InlineData("""{"prompt": "a", "top_p": 0}""", "body.top_p")]
    public void Validate_NamesTheFieldOutOfRange(string json, string field)
    {
        Assert.Equal(field, Assert.Single(Read(json).Validate()).Field);
    }
}

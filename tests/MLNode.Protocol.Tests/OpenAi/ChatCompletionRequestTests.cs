using System.Text.Json;
using System.Text.Json.Nodes;
using MLNode.Protocol.OpenAi;

namespace MLNode.Protocol.Tests.OpenAi;

public class ChatCompletionRequestTests
{
    // The request dapi forwards after its rewrite (spec asr-and-llm §3.4), plus fields this worker passes through.
    private const string DapiRequest = """
        {"model": "Qwen/Qwen2.5-7B-Instruct",
         "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 4+5?"}],
         "logprobs": true, "top_logprobs": 5, "seed": 42, "max_tokens": 100, "max_completion_tokens": 100,
         "skip_special_tokens": false, "return_token_ids": true, "logprobs_mode": "processed_logprobs",
         "stream": true, "stream_options": {"include_usage": true},
         "chat_template_kwargs": {"enable_thinking": false}, "add_generation_prompt": true}
        """;

    private static ChatCompletionRequest Read(string json) =>
        JsonSerializer.Deserialize<ChatCompletionRequest>(json, GonkaJson.Options)!;

    private static ChatCompletionRequest With(string fields) =>
        Read($$"""{"messages": [{"role": "user", "content": "hi"}], {{fields}}}""");

    [Fact]
    public void DapiRequest_ReadsEveryForcedField()
    {
        var request = Read(DapiRequest);

        Assert.Equal("Be brief.", request.Messages[0].Content!.Text);
        Assert.True(request.Logprobs);
        Assert.Equal(5, request.TopLogprobs);
        Assert.Equal(42, request.Seed);
        Assert.Equal(100, request.CompletionTokenLimit);
        Assert.False(request.SkipSpecialTokens);
        Assert.True(request.ReturnTokenIds);
        Assert.Equal(LogprobsMode.Processed, request.LogprobsMode);
        Assert.True(request.StreamOptions!.IncludeUsage);
        Assert.False(request.ChatTemplateKwargs!.Value.GetProperty("enable_thinking").GetBoolean());
        Assert.True(request.OtherFields!["add_generation_prompt"].GetBoolean());
        Assert.Empty(request.Validate());
    }

    [Fact]
    public void DapiRequest_RoundTripsWithoutLosingOrAddingFields()
    {
        var written = JsonSerializer.Serialize(Read(DapiRequest), GonkaJson.OmitNullsOptions);

        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(DapiRequest), JsonNode.Parse(written)),
            $"the request came back as {written}");
    }

    [Fact]
    public void ReplayRequest_RoundTripsEnforcedTokens()
    {
        const string replay = """
            {"messages": [{"role": "user", "content": "hi"}], "stream": false, "logprobs": true, "top_logprobs": 5, "skip_special_tokens": false,
             "enforced_tokens": {"tokens": [{"token": "24", "top_tokens": ["24", "23", "15", "19", "22"]},
                                            {"token": "151645", "top_tokens": ["151645", "0"]}]}}
            """;
        var request = Read(replay);

        Assert.Equal(["24", "151645"], request.EnforcedTokens!.Tokens.Select(t => t.Token));
        Assert.Equal(["24", "23", "15", "19", "22"], request.EnforcedTokens.Tokens[0].TopTokens!);
        Assert.Empty(request.Validate());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(replay), JsonNode.Parse(JsonSerializer.Serialize(request, GonkaJson.OmitNullsOptions))));
    }

    [Fact]
    public void MessageContent_PartsAndToolTurnsRoundTripInTheirOwnForm()
    {
        const string json = """
            {"messages": [
              {"role": "user", "content": [{"type": "text", "text": "Describe"}, {"type": "image_url", "image_url": {"url": "http://x/y.png"}},
                                           {"type": "text", "text": "briefly."}]},
              {"role": "assistant", "content": null, "reasoning_content": "Look first.",
               "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"at\": 1}"}}]},
              {"role": "tool", "content": "a cat", "tool_call_id": "call_1", "name": "look"}],
             "stop": ["\n\n", "END"], "skip_special_tokens": true, "tools": [{"type": "function", "function": {"name": "look"}}]}
            """;
        var request = Read(json);

        Assert.Equal("Describe\nbriefly.", request.Messages[0].Content!.AsText());
        Assert.Equal("http://x/y.png", request.Messages[0].Content!.Parts![1].OtherFields!["image_url"].GetProperty("url").GetString());
        Assert.Equal("look", request.Messages[1].ToolCalls![0].Function.Name);
        Assert.Equal("call_1", request.Messages[2].ToolCallId);
        Assert.Empty(request.Validate());
        // The assistant turn's explicit null content is dropped: the two mean the same to vLLM.
        var expected = JsonNode.Parse(json)!;
        expected["messages"]![1]!.AsObject().Remove("content");
        Assert.True(JsonNode.DeepEquals(expected, JsonNode.Parse(JsonSerializer.Serialize(request, GonkaJson.OmitNullsOptions))));
    }

    [Fact]
    public void Stop_AcceptsASingleString()
    {
        Assert.Equal(["</s>"], With("\"stop\": \"</s>\"").Stop!);
    }

    [Theory]
    [InlineData("\"content\": 5")]
    [InlineData("\"content\": {\"text\": \"hi\"}")]
    public void Content_OfAnotherShapeIsUnreadable(string content)
    {
        Assert.Throws<JsonException>(() => Read($$"""{"messages": [{"role": "user", {{content}}}]}"""));
    }

    [Fact]
    public void Messages_AreRequired()
    {
        var error = Assert.Throws<JsonException>(() => Read("""{"model": "m"}"""));
        Assert.Contains("messages", error.Message);
    }

    [Theory]
    [InlineData("\"temperature\": -0.1", "body.temperature")]
    [InlineData("\"top_p\": 0", "body.top_p")]
    [InlineData("\"top_p\": 1.01", "body.top_p")]
    [InlineData("\"top_k\": -2", "body.top_k")]
    [InlineData("\"min_p\": 1.5", "body.min_p")]
    [InlineData("\"n\": 2", "body.n")]
    [InlineData("\"max_tokens\": 0", "body.max_tokens")]
    [InlineData("\"max_completion_tokens\": 0", "body.max_completion_tokens")]
    [InlineData("\"logprobs\": true, \"top_logprobs\": 21", "body.top_logprobs")]
    [InlineData("\"logprobs\": true, \"top_logprobs\": -1", "body.top_logprobs")]
    [InlineData("\"top_logprobs\": 5", "body.top_logprobs")]
    [InlineData("\"logprobs_mode\": \"raw_logits\"", "body.logprobs_mode")]
    [InlineData("\"stream_options\": {\"include_usage\": true}", "body.stream_options")]
    [InlineData("\"presence_penalty\": 2.5", "body.presence_penalty")]
    [InlineData("\"frequency_penalty\": -3", "body.frequency_penalty")]
    [InlineData("\"repetition_penalty\": 0", "body.repetition_penalty")]
    [InlineData("\"stop\": [\"\"]", "body.stop")]
    [InlineData("\"chat_template_kwargs\": [true]", "body.chat_template_kwargs")]
    [InlineData("\"tools\": {\"type\": \"function\"}", "body.tools")]
    [InlineData("\"enforced_tokens\": {\"tokens\": []}", "body.enforced_tokens.tokens")]
    [InlineData("\"enforced_tokens\": {\"tokens\": [{\"token\": \"24\"}, {\"token\": \"Okay\"}]}", "body.enforced_tokens.tokens.1.token")]
    [InlineData("\"enforced_tokens\": {\"tokens\": [{\"token\": \"24\", \"top_tokens\": [\"-3\"]}]}", "body.enforced_tokens.tokens.0.top_tokens.0")]
    public void Validate_NamesTheFieldOutOfRange(string fields, string field)
    {
        var error = Assert.Single(With(fields).Validate());
        Assert.Equal(field, error.Field);
    }

    [Fact]
    public void Validate_NamesEveryEmptyRole()
    {
        var request = Read("""{"messages": [{"role": "user", "content": "a"}, {"role": " ", "content": "b"}]}""");
        Assert.Equal("body.messages.1.role", Assert.Single(request.Validate()).Field);
    }

    [Theory]
    [InlineData("\"temperature\": 0, \"top_p\": 1, \"top_k\": -1, \"min_p\": 0")]
    [InlineData("\"temperature\": 2.5, \"top_k\": 0, \"min_p\": 1, \"n\": 1")]
    [InlineData("\"logprobs\": true, \"top_logprobs\": 20, \"logprobs_mode\": \"raw_logprobs\"")]
    [InlineData("\"logprobs\": false, \"top_logprobs\": 0, \"max_tokens\": 1")]
    [InlineData("\"stream\": true, \"stream_options\": {\"include_usage\": false}, \"stop\": \"x\"")]
    [InlineData("\"presence_penalty\": -2, \"frequency_penalty\": 2, \"repetition_penalty\": 1.1, \"seed\": -1")]
    [InlineData("\"ignore_eos\": true, \"enforced_str\": \"Okay\", \"tools\": [], \"tool_choice\": \"auto\"")]
    public void Validate_AcceptsTheRangeBoundaries(string fields)
    {
        Assert.Empty(With(fields).Validate());
    }
}

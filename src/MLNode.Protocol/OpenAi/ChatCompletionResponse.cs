using System.Text.Json;

namespace MLNode.Protocol.OpenAi;

/// <summary>
/// The answer to a non-streamed chat completion, written with <see cref="GonkaJson.Options"/>: vLLM dumps the whole
/// model, nulls included (<c>"reasoning_content": null</c>, <c>"stop_reason": null</c>).
/// </summary>
public sealed record ChatCompletionResponse(
    string Id,
    long Created,
    string Model,
    IReadOnlyList<ChatCompletionChoice> Choices,
    Usage? Usage,
    IReadOnlyList<int>? PromptTokenIds = null,
    string Object = "chat.completion");

/// <summary>
/// One choice. <c>finish_reason</c> is "stop", "length", "tool_calls" or "abort"; <c>stop_reason</c> is the stop
/// string or stop token id that ended it (a string or an integer, hence raw JSON). <c>token_ids</c> only when
/// <c>return_token_ids</c> was asked for.
/// </summary>
public sealed record ChatCompletionChoice(
    int Index,
    ChatResponseMessage Message,
    ChatLogprobs? Logprobs,
    string? FinishReason,
    JsonElement? StopReason = null,
    IReadOnlyList<int>? TokenIds = null);

public sealed record ChatResponseMessage(string Role, string? Content, string? ReasoningContent = null)
{
    public IReadOnlyList<ToolCall> ToolCalls { get; init; } = [];
}

/// <summary><c>choices[].logprobs</c>: one entry per generated token.</summary>
public sealed record ChatLogprobs(IReadOnlyList<ChatCompletionLogprob> Content);

/// <summary>
/// A generated token with its logprob and the top alternatives. In Gonka's fork <c>token</c> is the decimal token
/// id and <c>bytes</c> the UTF-8 of that string; build them with <see cref="LogprobWire"/>.
/// </summary>
public sealed record ChatCompletionLogprob(string Token, double Logprob, IReadOnlyList<int>? Bytes, IReadOnlyList<TopLogprob> TopLogprobs)
{
    public static ChatCompletionLogprob ForTokenId(int tokenId, double logprob, IReadOnlyList<TopLogprob> topLogprobs)
    {
        var token = LogprobWire.TokenString(tokenId);
        return new(token, LogprobWire.Logprob(logprob), LogprobWire.Bytes(token), topLogprobs);
    }
}

public sealed record TopLogprob(string Token, double Logprob, IReadOnlyList<int>? Bytes)
{
    public static TopLogprob ForTokenId(int tokenId, double logprob)
    {
        var token = LogprobWire.TokenString(tokenId);
        return new(token, LogprobWire.Logprob(logprob), LogprobWire.Bytes(token));
    }
}

public sealed record Usage(int PromptTokens, int CompletionTokens, int TotalTokens, PromptTokensDetails? PromptTokensDetails = null);

public sealed record PromptTokensDetails(int CachedTokens);

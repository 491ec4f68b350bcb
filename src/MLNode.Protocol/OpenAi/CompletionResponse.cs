using System.Text.Json;

namespace MLNode.Protocol.OpenAi;

/// <summary>The answer to POST /v1/completions (<c>text_completion</c>); streamed chunks have the same shape.</summary>
public sealed record CompletionResponse(
    string Id,
    long Created,
    string Model,
    IReadOnlyList<CompletionChoice> Choices,
    Usage? Usage,
    string Object = "text_completion");

public sealed record CompletionChoice(
    int Index,
    string Text,
    CompletionLogprobs? Logprobs,
    string? FinishReason,
    JsonElement? StopReason = null,
    IReadOnlyList<int>? TokenIds = null,
    IReadOnlyList<int>? PromptTokenIds = null);

/// <summary>
/// The legacy completions layout: parallel arrays per token, top alternatives as token→logprob maps. Entries are
/// null where no logprob exists (the first prompt token under <c>echo</c>).
/// </summary>
public sealed record CompletionLogprobs(
    IReadOnlyList<int> TextOffset,
    IReadOnlyList<double?> TokenLogprobs,
    IReadOnlyList<string> Tokens,
    IReadOnlyList<IReadOnlyDictionary<string, double>?> TopLogprobs);

using System.Text.Json;
using System.Text.Json.Serialization;

namespace MLNode.Protocol.OpenAi;

/// <summary>
/// One server-sent event of a streamed chat completion (<c>data: {…}</c>), written with
/// <see cref="GonkaJson.OmitNullsOptions"/> as vLLM writes chunks with <c>exclude_unset</c>. The last chunk, when
/// <c>stream_options.include_usage</c> is set, has no choices and carries the usage.
/// </summary>
public sealed record ChatCompletionChunk(
    string Id,
    long Created,
    string Model,
    IReadOnlyList<ChatChunkChoice> Choices,
    Usage? Usage = null,
    string Object = "chat.completion.chunk")
{
    /// <summary>What ends the event stream after the last chunk.</summary>
    public const string DoneEvent = "data: [DONE]\n\n";
}

/// <summary><c>finish_reason</c> is written even while null: clients wait for it to turn non-null.</summary>
public sealed record ChatChunkChoice(
    int Index,
    ChatDelta Delta,
    ChatLogprobs? Logprobs = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? FinishReason = null,
    JsonElement? StopReason = null,
    IReadOnlyList<int>? TokenIds = null);

/// <summary>What this chunk adds to the message: the role on the first chunk, then text.</summary>
public sealed record ChatDelta(string? Role = null, string? Content = null, string? ReasoningContent = null);

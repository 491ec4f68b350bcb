using System.Text.Json;
using System.Text.Json.Serialization;
using MLNode.Protocol.Management;

namespace MLNode.Protocol.OpenAi;

/// <summary>
/// POST /v1/chat/completions as Gonka's vLLM fork reads it. dapi rewrites every user request before it gets here
/// (logprobs on, top_logprobs ≥ 5, skip_special_tokens off, return_token_ids on, a seed, logprobs_mode), and a
/// validator replays the executor's request with <see cref="EnforcedTokens"/> set.
/// </summary>
public sealed record ChatCompletionRequest : SamplingRequest
{
    public required IReadOnlyList<ChatMessage> Messages { get; init; }

    /// <summary>OpenAI's newer name for <see cref="SamplingRequest.MaxTokens"/>; dapi sets both to the same value.</summary>
    public int? MaxCompletionTokens { get; init; }

    public bool? Logprobs { get; init; }

    public int? TopLogprobs { get; init; }

    /// <summary>Passed to the chat template, e.g. <c>{"enable_thinking": false}</c>.</summary>
    public JsonElement? ChatTemplateKwargs { get; init; }

    public JsonElement? Tools { get; init; }

    public JsonElement? ToolChoice { get; init; }

    /// <summary>The executor's tokens (and their top tokens) that a validator replay must emit, position by position.</summary>
    public EnforcedTokenList? EnforcedTokens { get; init; }

    /// <summary>The older replay form: the executor's text, tokenized by the validator.</summary>
    public string? EnforcedStr { get; init; }

    /// <summary>The completion length limit, whichever of the two names carried it.</summary>
    [JsonIgnore]
    public int? CompletionTokenLimit => MaxCompletionTokens ?? MaxTokens;

    public override IEnumerable<FieldError> Validate() => base.Validate().Concat(ChatErrors());

    private IEnumerable<FieldError> ChatErrors()
    {
        if (Messages.Count == 0)
            yield return new FieldError("body.messages", "must hold at least one message");
        for (var i = 0; i < Messages.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(Messages[i].Role))
                yield return new FieldError($"body.messages.{i}.role", "must be a non-empty role");
        }
        if (MaxCompletionTokens < 1)
            yield return new FieldError("body.max_completion_tokens", "must be ≥ 1");
        if (TopLogprobs is { } top && !(top is >= 0 and <= MaxLogprobs))
            yield return new FieldError("body.top_logprobs", $"must be in [0, {MaxLogprobs}]");
        if (TopLogprobs > 0 && Logprobs != true)
            yield return new FieldError("body.top_logprobs", "needs logprobs set to true");
        if (ChatTemplateKwargs is { ValueKind: not JsonValueKind.Object })
            yield return new FieldError("body.chat_template_kwargs", "must be a JSON object");
        if (Tools is { ValueKind: not JsonValueKind.Array })
            yield return new FieldError("body.tools", "must be an array of tools");
        if (EnforcedTokens is not null)
        {
            foreach (var error in Validation.EnforcedTokens.Parse(EnforcedTokens).Errors)
                yield return error;
        }
    }
}

/// <summary>One chat turn. <c>content</c> is null for an assistant turn that only calls tools.</summary>
public sealed record ChatMessage(
    string Role,
    ChatContent? Content = null,
    string? Name = null,
    IReadOnlyList<ToolCall>? ToolCalls = null,
    string? ToolCallId = null,
    string? ReasoningContent = null);

public sealed record ToolCall(string Id, FunctionCall Function, string Type = "function");

/// <summary>A call as the model wrote it: <c>arguments</c> is the JSON text, not a parsed object (as in OpenAI's API).</summary>
public sealed record FunctionCall(string Name, string Arguments);

/// <summary>
/// A message's content: either a plain string or an array of typed parts (<c>{"type":"text","text":…}</c>,
/// <c>{"type":"image_url",…}</c>). It is written back in the form it was read in.
/// </summary>
[JsonConverter(typeof(ChatContentConverter))]
public sealed record ChatContent
{
    private ChatContent(string? text, IReadOnlyList<ChatContentPart>? parts) => (Text, Parts) = (text, parts);

    /// <summary>Set when the content was a plain string.</summary>
    public string? Text { get; }

    /// <summary>Set when the content was an array of parts.</summary>
    public IReadOnlyList<ChatContentPart>? Parts { get; }

    public static ChatContent FromText(string text) => new(text, null);

    public static ChatContent FromParts(IReadOnlyList<ChatContentPart> parts) => new(null, parts);

    /// <summary>The text the chat template sees: the string, or the text parts joined with newlines as vLLM does.</summary>
    public string AsText() => Text ?? string.Join("\n", Parts!.Where(p => p.Type == ChatContentPart.TextType).Select(p => p.Text));
}

/// <summary>One part of an array content. Parts other than text (images, audio) keep their fields in <see cref="OtherFields"/>.</summary>
public sealed record ChatContentPart(string Type, string? Text = null)
{
    public const string TextType = "text";

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? OtherFields { get; init; }
}

internal sealed class ChatContentConverter() : TextOrListConverter<ChatContent, ChatContentPart>("content", "an array of content parts")
{
    protected override ChatContent FromText(string text) => ChatContent.FromText(text);
    protected override ChatContent FromList(IReadOnlyList<ChatContentPart> items) => ChatContent.FromParts(items);
    protected override string? Text(ChatContent value) => value.Text;
    protected override IReadOnlyList<ChatContentPart>? List(ChatContent value) => value.Parts;
}

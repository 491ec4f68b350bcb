using System.Text.Json;
using System.Text.Json.Serialization;
using MLNode.Protocol.Management;

namespace MLNode.Protocol.OpenAi;

/// <summary>POST /v1/completions: a raw prompt, no chat template. <c>logprobs</c> is a count here, not a switch.</summary>
public sealed record CompletionRequest : SamplingRequest
{
    public required CompletionPrompt Prompt { get; init; }

    /// <summary>How many top logprobs to return per position (the chat API's top_logprobs); null for none.</summary>
    public int? Logprobs { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool Echo { get; init; }

    public override IEnumerable<FieldError> Validate() => base.Validate().Concat(CompletionErrors());

    private IEnumerable<FieldError> CompletionErrors()
    {
        if (Logprobs is { } logprobs && !(logprobs is >= 0 and <= MaxLogprobs))
            yield return new FieldError("body.logprobs", $"must be in [0, {MaxLogprobs}]");
        if (Prompt.Text is "" || Prompt.TokenIds is { Count: 0 })
            yield return new FieldError("body.prompt", "must not be empty");
        if (Prompt.TokenIds?.Any(id => id < 0) == true)
            yield return new FieldError("body.prompt", "token ids must be ≥ 0");
    }
}

/// <summary>
/// <c>prompt</c>: a string or one array of token ids, written back in the form it was read in. vLLM's batched forms
/// (arrays of prompts) are refused: one request is one sequence here.
/// </summary>
[JsonConverter(typeof(CompletionPromptConverter))]
public sealed record CompletionPrompt
{
    private CompletionPrompt(string? text, IReadOnlyList<int>? tokenIds) => (Text, TokenIds) = (text, tokenIds);

    public string? Text { get; }

    public IReadOnlyList<int>? TokenIds { get; }

    public static CompletionPrompt FromText(string text) => new(text, null);

    public static CompletionPrompt FromTokenIds(IReadOnlyList<int> tokenIds) => new(null, tokenIds);
}

internal sealed class CompletionPromptConverter() : TextOrListConverter<CompletionPrompt, int>("prompt", "an array of token ids")
{
    protected override CompletionPrompt FromText(string text) => CompletionPrompt.FromText(text);
    protected override CompletionPrompt FromList(IReadOnlyList<int> items) => CompletionPrompt.FromTokenIds(items);
    protected override string? Text(CompletionPrompt value) => value.Text;
    protected override IReadOnlyList<int>? List(CompletionPrompt value) => value.TokenIds;
}

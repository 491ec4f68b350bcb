using MLNode.Engines.Llm;
using MLNode.Protocol;
using MLNode.Protocol.Management;
using MLNode.Protocol.OpenAi;
using MLNode.Worker.Node;

namespace MLNode.Worker.Api;

/// <summary>
/// <c>POST /v1/completions</c>: a raw prompt (text or token ids, no chat template) through the same
/// generator as chat; <c>logprobs: k</c> returns the legacy per-token lists with decimal-id tokens.
/// </summary>
public static class CompletionsEndpoint
{
    internal static async Task<IResult> HandleAsync(HttpContext http, NodeController node, CancellationToken ct)
    {
        var (body, error) = await RequestBody.ReadAsync<CompletionRequest>(http.Request, ct, maxBytes: 32L << 20);
        if (error is not null) return error;
        var (llm, tokenizer, refused) = ChatCompletionsEndpoint.Target(node, body!.Model);
        if (refused is not null) return refused;
        var promptIds = body.Prompt.TokenIds?.ToArray() ?? tokenizer!.Encode(body.Prompt.Text!, allowSpecial: true);
        if (promptIds.FirstOrDefault(id => id >= tokenizer!.VocabSize, -1) is var bad and >= 0)
            return RequestBody.Invalid(new FieldError("body.prompt", $"token id {bad} is outside the vocabulary ({tokenizer!.VocabSize})"));
        var capacity = llm!.Generator.Capacity;
        var maxTokens = body.MaxTokens ?? 16;
        if (ChatCompletionsEndpoint.ContextError(promptIds.Length, maxTokens, capacity, "max_tokens") is { } tooLong) return tooLong;

        var sampling = ChatCompletionsEndpoint.Sampling(body, body.Logprobs ?? 0, ChatCompletionsEndpoint.ExplicitMode(body) ?? Engines.Llm.Sampling.LogprobsMode.Processed);
        using var stopEarly = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var tokens = llm.Generator.Generate(new GenerationRequest(promptIds, sampling, maxTokens, llm.StopTokens, null, body.IgnoreEos), stopEarly.Token);
        var completion = new CompletionStream(tokens, tokenizer!, llm.StopTokens, body.SkipSpecialTokens, body.Stop ?? [], stopEarly);
        var (id, created, model) = ($"cmpl-{Guid.NewGuid():N}", DateTimeOffset.UtcNow.ToUnixTimeSeconds(), llm.Card.Id);
        var logprobs = body.Logprobs is not null;

        if (body.Stream == true)
        {
            ChatCompletionsEndpoint.StartEventStream(http);
            var count = 0;
            await foreach (var piece in completion.ReadAllAsync(ct))
            {
                count++;
                var finish = piece.Last ? completion.FinishReason : null;
                if (!piece.Visible && finish is null) continue;
                await ChatCompletionsEndpoint.SendEvent(http, new CompletionResponse(id, created, model,
                    [new CompletionChoice(0, piece.Text, logprobs && piece.Visible ? Legacy([piece], 0) : null, finish)], null), ct);
            }
            if (body.StreamOptions?.IncludeUsage == true)
                await ChatCompletionsEndpoint.SendEvent(http, new CompletionResponse(id, created, model, [], new Usage(promptIds.Length, count, promptIds.Length + count)), ct);
            await http.Response.WriteAsync(ChatCompletionChunk.DoneEvent, ct);
            return Results.Empty;
        }
        var pieces = new List<CompletionPiece>();
        await foreach (var piece in completion.ReadAllAsync(ct)) pieces.Add(piece);
        var visible = pieces.Where(p => p.Visible).ToList();
        var choice = new CompletionChoice(0, string.Concat(pieces.Select(p => p.Text)), logprobs ? Legacy(visible, 0) : null, completion.FinishReason,
            TokenIds: body.ReturnTokenIds == true ? visible.Select(p => p.Token.Token).ToList() : null,
            PromptTokenIds: body.ReturnTokenIds == true ? promptIds : null);
        return Results.Json(new CompletionResponse(id, created, model, [choice], new Usage(promptIds.Length, pieces.Count, promptIds.Length + pieces.Count)),
            GonkaJson.OmitNullsOptions);
    }

    /// <summary>The completions API's parallel lists; tokens are decimal ids as on the chat API.</summary>
    private static CompletionLogprobs Legacy(IReadOnlyList<CompletionPiece> pieces, int offset)
    {
        var offsets = new List<int>();
        foreach (var p in pieces)
        {
            offsets.Add(offset);
            offset += p.Text.Length;
        }
        return new CompletionLogprobs(offsets,
            pieces.Select(p => (double?)LogprobWire.Logprob(p.Token.Logprob)).ToList(),
            pieces.Select(p => LogprobWire.TokenString(p.Token.Token)).ToList(),
            pieces.Select(p => (IReadOnlyDictionary<string, double>?)p.Token.Top
                .GroupBy(t => t.Token).ToDictionary(g => LogprobWire.TokenString(g.Key), g => LogprobWire.Logprob(g.First().Logprob))).ToList());
    }
}

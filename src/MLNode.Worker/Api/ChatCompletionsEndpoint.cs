using System.Text.Json;
using MLNode.Engines.Llm;
using MLNode.Engines.Llm.ChatTemplates;
using MLNode.Engines.Llm.Sampling;
using MLNode.Engines.Llm.Tokenization;
using MLNode.Protocol;
using MLNode.Protocol.Management;
using MLNode.Protocol.OpenAi;
using MLNode.Protocol.Validation;
using Microsoft.Extensions.Options;
using MLNode.Worker.Hosting;
using MLNode.Worker.Node;
using SamplingMode = MLNode.Engines.Llm.Sampling.LogprobsMode;
using WireMode = MLNode.Protocol.OpenAi.LogprobsMode;

namespace MLNode.Worker.Api;

/// <summary>
/// <c>POST /v1/chat/completions</c> with the semantics of Gonka's vLLM fork: logprob tokens are decimal
/// ids, −∞ is −9999.0, processed logprobs by default, and <c>enforced_tokens</c> replays another host's
/// output through this model (EOS appended, logprobs mode detected when absent). Streams as SSE.
/// </summary>
public static class ChatCompletionsEndpoint
{
    private const long MaxBodyBytes = 32L << 20;

    public static void MapChatCompletions(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/chat/completions", HandleAsync);
        app.MapPost("/v1/completions", CompletionsEndpoint.HandleAsync);
    }

    /// <summary>The loaded LLM with its tokenizer, or the error the request gets instead.</summary>
    internal static (LlmExecutor? Llm, ByteLevelBpeTokenizer? Tokenizer, IResult? Error) Target(NodeController node, string? model)
    {
        if (node.Model is not LlmExecutor llm) return (null, null, SystemEndpoints.NoBackend());
        if (model is not null && model != llm.Card.Id)
            return (null, null, OpenAiFailure(StatusCodes.Status404NotFound, "NotFoundError", $"The model `{model}` does not exist.", "model"));
        if (llm.Tokenizer is not { } tokenizer)
            return (null, null, OpenAiFailure(StatusCodes.Status400BadRequest, OpenAiError.BadRequestType, $"{llm.Card.Id} has no tokenizer.json", "model"));
        return (llm, tokenizer, null);
    }

    /// <summary>vLLM's 400 when prompt plus completion exceed the context.</summary>
    internal static IResult? ContextError(int promptTokens, int maxTokens, int capacity, string param) =>
        promptTokens + maxTokens <= capacity ? null : OpenAiFailure(StatusCodes.Status400BadRequest, OpenAiError.BadRequestType,
            $"This model's maximum context length is {capacity} tokens. However, you requested {promptTokens + maxTokens} tokens " +
            $"({promptTokens} in the messages, {maxTokens} in the completion). Please reduce the length of the messages or completion.", param);

    internal static SamplingParams Sampling(SamplingRequest body, int topLogprobs, SamplingMode mode) =>
        new(body.Temperature ?? 1.0, body.TopP ?? 1.0, body.TopK is > 0 ? body.TopK.Value : 0, body.MinP ?? 0.0, body.Seed, topLogprobs, mode);

    internal static SamplingMode? ExplicitMode(SamplingRequest body) => body.LogprobsMode switch
    {
        WireMode.Raw => SamplingMode.Raw,
        WireMode.Processed => SamplingMode.Processed,
        _ => null,
    };

    private static async Task<IResult> HandleAsync(HttpContext http, NodeController node, IOptions<WorkerOptions> options, CancellationToken ct)
    {
        var (body, error) = await RequestBody.ReadAsync<ChatCompletionRequest>(http.Request, ct, maxBytes: MaxBodyBytes);
        if (error is not null) return error;
        var (llm, tokenizer, refused) = Target(node, body!.Model);
        if (refused is not null) return refused;

        var prompt = Render(body, llm!, tokenizer!, out var templateError);
        if (templateError is not null) return OpenAiFailure(StatusCodes.Status400BadRequest, OpenAiError.BadRequestType, templateError, "messages");
        var promptIds = tokenizer!.Encode(prompt!, allowSpecial: true);

        var (enforced, mode, enforcedErrors) = Replay(body, tokenizer, llm!.StopTokens);
        if (enforcedErrors.Count > 0) return RequestBody.Invalid([.. enforcedErrors]);
        var capacity = llm.Generator.Capacity;
        var maxTokens = enforced?.Count ?? body.CompletionTokenLimit ?? capacity - promptIds.Length;
        if (ContextError(promptIds.Length, maxTokens, capacity, body.MaxCompletionTokens is null ? "max_tokens" : "max_completion_tokens") is { } tooLong)
            return tooLong;

        var wantLogprobs = body.Logprobs == true;
        var sampling = Sampling(body, wantLogprobs ? body.TopLogprobs ?? 0 : 0, mode);
        var id = $"chatcmpl-{Guid.NewGuid():N}";
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        IReadOnlyList<CompletionPiece> pieces;
        string? finishReason;
        var teacherForced = enforced is not null && options.Value.ReplayMode == WorkerOptions.TeacherForcedReplay && body.Stream != true;
        if (teacherForced)
        {
            // Fast validation: one teacher-forced forward over prompt + claimed output.
            var scored = await llm.ScoreAsync(promptIds, enforced!, sampling, ct);
            pieces = scored.Select((t, i) => Scored(t, i == scored.Count - 1 && llm.StopTokens.Contains(t.Token), i == scored.Count - 1)).ToList();
            finishReason = "stop";
        }
        else
        {
            using var stopEarly = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var tokens = llm.Generator.Generate(new GenerationRequest(promptIds, sampling, maxTokens, llm.StopTokens, enforced, body.IgnoreEos), stopEarly.Token);
            var completion = new CompletionStream(tokens, tokenizer, llm.StopTokens, body.SkipSpecialTokens, body.Stop ?? [], stopEarly);
            if (body.Stream == true)
            {
                await StreamAsync(http, completion, id, created, llm.Card.Id, promptIds.Length, wantLogprobs, body.StreamOptions?.IncludeUsage == true, body.ReturnTokenIds == true, ct);
                return Results.Empty;
            }
            var collected = new List<CompletionPiece>();
            await foreach (var piece in completion.ReadAllAsync(ct)) collected.Add(piece);
            (pieces, finishReason) = (collected, completion.FinishReason);
        }
        var ids = pieces.Where(p => p.Visible).Select(p => p.Token.Token).ToList();
        var text = teacherForced
            ? tokenizer.Decode(ids, body.SkipSpecialTokens)
            : string.Concat(pieces.Select(p => p.Text));
        var choice = new ChatCompletionChoice(0,
            new ChatResponseMessage("assistant", text),
            wantLogprobs ? new ChatLogprobs(pieces.Where(p => p.Visible).Select(p => Wire(p.Token)).ToList()) : null,
            finishReason,
            TokenIds: body.ReturnTokenIds == true ? ids : null);
        return Results.Json(new ChatCompletionResponse(id, created, llm.Card.Id, [choice],
            new Usage(promptIds.Length, pieces.Count, promptIds.Length + pieces.Count),
            body.ReturnTokenIds == true ? promptIds : null), GonkaJson.OmitNullsOptions);
    }

    private static CompletionPiece Scored(TokenLogprob token, bool isStopToken, bool last) => new(token, "", !isStopToken, last);

    /// <summary>The chat template of the checkpoint, rendered as transformers renders it (errors are the client's: 400).</summary>
    private static string? Render(ChatCompletionRequest body, LlmExecutor llm, ByteLevelBpeTokenizer tokenizer, out string? error)
    {
        error = null;
        if (llm.ChatTemplate is not { } template)
        {
            error = "this model's tokenizer_config.json has no chat_template";
            return null;
        }
        try
        {
            var specials = new Dictionary<string, string>();
            if (tokenizer.Config.BosToken is { } bos) specials["bos_token"] = bos;
            if (tokenizer.Config.EosToken is { } eos) specials["eos_token"] = eos;
            if (tokenizer.Config.PadToken is { } pad) specials["pad_token"] = pad;
            var kwargs = body.ChatTemplateKwargs is { ValueKind: JsonValueKind.Object } k
                ? k.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone())
                : null;
            return template.Value.RenderChat(JsonSerializer.SerializeToElement(body.Messages, GonkaJson.OmitNullsOptions),
                addGenerationPrompt: true, body.Tools, specials, kwargs);
        }
        catch (ChatTemplateException e)
        {
            error = $"chat template: {e.Message}";
            return null;
        }
    }

    /// <summary>Validator replay: the ids to emit (EOS appended) and the logprobs mode, detected from the top tokens when not given.</summary>
    private static (IReadOnlyList<int>? Enforced, SamplingMode Mode, IReadOnlyList<FieldError> Errors) Replay(
        ChatCompletionRequest body, ByteLevelBpeTokenizer tokenizer, IReadOnlySet<int> stopTokens)
    {
        var explicitMode = ExplicitMode(body);
        var eos = tokenizer.EosTokenId ?? stopTokens.First();
        if (body.EnforcedTokens is { } list)
        {
            var parsed = EnforcedTokens.Parse(list);
            if (parsed.Errors.Count > 0) return (null, SamplingMode.Processed, parsed.Errors);
            var outOfVocab = parsed.Ids!.TokenIds.Select((t, i) => (t, i)).FirstOrDefault(p => p.t >= tokenizer.VocabSize);
            if (outOfVocab != default)
                return (null, SamplingMode.Processed, [new FieldError($"body.enforced_tokens.tokens.{outOfVocab.i}.token", $"{outOfVocab.t} is outside the vocabulary ({tokenizer.VocabSize})")]);
            var detected = EnforcedTokens.DetectLogprobsMode(parsed.Ids) == WireMode.Raw ? SamplingMode.Raw : SamplingMode.Processed;
            return (EnforcedTokens.AppendEos(parsed.Ids.TokenIds, eos), explicitMode ?? detected, []);
        }
        if (body.EnforcedStr is { } text)
            return (EnforcedTokens.AppendEos(tokenizer.Encode(text, allowSpecial: false), eos), explicitMode ?? SamplingMode.Processed, []);
        return (null, explicitMode ?? SamplingMode.Processed, []);
    }

    private static async Task StreamAsync(HttpContext http, CompletionStream completion, string id, long created, string model,
        int promptTokens, bool logprobs, bool usage, bool returnTokenIds, CancellationToken ct)
    {
        StartEventStream(http);
        await Send(new ChatCompletionChunk(id, created, model, [new ChatChunkChoice(0, new ChatDelta(Role: "assistant", Content: ""))]));
        var count = 0;
        await foreach (var piece in completion.ReadAllAsync(ct))
        {
            count++;
            var finish = piece.Last ? completion.FinishReason : null;
            if (!piece.Visible && finish is null) continue;
            await Send(new ChatCompletionChunk(id, created, model, [new ChatChunkChoice(0, new ChatDelta(Content: piece.Text),
                logprobs && piece.Visible ? new ChatLogprobs([Wire(piece.Token)]) : null, finish,
                TokenIds: returnTokenIds && piece.Visible ? [piece.Token.Token] : null)]));
        }
        if (usage) await Send(new ChatCompletionChunk(id, created, model, [], new Usage(promptTokens, count, promptTokens + count)));
        await http.Response.WriteAsync(ChatCompletionChunk.DoneEvent, ct);

        Task Send(ChatCompletionChunk chunk) => SendEvent(http, chunk, ct);
    }

    internal static void StartEventStream(HttpContext http)
    {
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
    }

    /// <summary>One SSE event, flushed so the client sees each token as it is generated.</summary>
    internal static async Task SendEvent<T>(HttpContext http, T chunk, CancellationToken ct)
    {
        await http.Response.WriteAsync($"data: {JsonSerializer.Serialize(chunk, GonkaJson.OmitNullsOptions)}\n\n", ct);
        await http.Response.Body.FlushAsync(ct);
    }

    internal static ChatCompletionLogprob Wire(TokenLogprob t) => ChatCompletionLogprob.ForTokenId(t.Token, t.Logprob,
        t.Top.Select(e => TopLogprob.ForTokenId(e.Token, e.Logprob)).ToList());

    internal static IResult OpenAiFailure(int status, string type, string message, string param) =>
        Results.Json(new OpenAiErrorResponse(new OpenAiError(message, type, status, param)), GonkaJson.Options, statusCode: status);
}

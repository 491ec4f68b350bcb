using System.Threading.Channels;
using MLNode.Engines.Asr;
using MLNode.Engines.Llm.Sampling;
using MLNode.Protocol.OpenAi;

namespace MLNode.Worker.Api;

/// <summary>
/// A transcription sent as vLLM's <c>transcription.chunk</c> server-sent events, one per token (with its logprobs when
/// asked), then a last chunk with <c>finish_reason</c>, usage and the replay extensions, then <c>data: [DONE]</c>.
/// The windows of a job decode together but their text must arrive in order: the first window streams as it decodes,
/// the later windows follow once decoding ends. The tokens streamed are the result's tokens in window order, so the
/// chunks' logprobs add up to the non-streamed response's flat list.
/// </summary>
public sealed class TranscriptionEventStream(HttpContext http, ISpeechExecutor speech, string id, long created, bool logprobs, ILogger logger)
{
    private int _lastWindowWithText = -1;

    /// <summary>Streams <paramref name="job"/>; <paramref name="lastChunk"/> builds the closing chunk from the result.</summary>
    public async Task<SpeechResult> SendAsync(SpeechJob job, Func<SpeechResult, TranscriptionChunk> lastChunk, CancellationToken ct)
    {
        var decoded = Channel.CreateUnbounded<(int Window, TokenLogprob Token)>(new UnboundedChannelOptions { SingleReader = true });
        var decoding = Task.Run(async () =>
        {
            try
            {
                return await speech.TranscribeAsync(job, (window, token) => decoded.Writer.TryWrite((window, token)), ct);
            }
            finally
            {
                decoded.Writer.TryComplete();
            }
        }, ct);

        ChatCompletionsEndpoint.StartEventStream(http);
        var first = new WindowTextDeltas(speech.Decode);
        var firstStreamed = new List<int>();
        await foreach (var (window, token) in decoded.Reader.ReadAllAsync(ct))
        {
            if (window != 0) continue;
            firstStreamed.Add(token.Token);
            await SendTokenAsync(0, first.Append(token.Token), token, separator: "", ct);
        }
        var result = await decoding;

        var separator = Transcript.Separator(result.Language);
        for (var w = 0; w < result.Windows.Count; w++)
        {
            var window = result.Windows[w];
            var deltas = w == 0 ? first : new WindowTextDeltas(speech.Decode);
            var streamed = w == 0 ? firstStreamed : [];
            if (!window.Tokens.Take(streamed.Count).Select(t => t.Token).SequenceEqual(streamed))
                logger.LogWarning("Window 0 of a streamed transcription decoded other tokens than it streamed; the stream's text may differ from the result");
            foreach (var token in window.Tokens.Skip(streamed.Count))
                await SendTokenAsync(w, deltas.Append(token.Token), token, separator, ct);
            if (deltas.Finish(window.Text.Trim()) is { } rest)
                await SendTokenAsync(w, rest, null, separator, ct);
            else
                logger.LogWarning("Window {Window}'s text is not the decoding of its tokens; streamed the decoding", w);
        }

        await ChatCompletionsEndpoint.SendEvent(http, lastChunk(result), ct);
        await http.Response.WriteAsync(ChatCompletionChunk.DoneEvent, ct);
        return result;
    }

    /// <summary>
    /// One chunk: a token's text delta and logprob, or (token null) the rest of a window's text. A window's first text
    /// is preceded by the separator when an earlier window had text.
    /// </summary>
    private Task SendTokenAsync(int window, string delta, TokenLogprob? token, string separator, CancellationToken ct)
    {
        if (delta.Length > 0)
        {
            if (_lastWindowWithText >= 0 && _lastWindowWithText != window) delta = separator + delta;
            _lastWindowWithText = window;
        }
        var entry = logprobs && token is not null ? new ChatLogprobs([ChatCompletionsEndpoint.Wire(token)]) : null;
        if (delta.Length == 0 && entry is null) return Task.CompletedTask;
        return ChatCompletionsEndpoint.SendEvent(http, new TranscriptionChunk(id, created, speech.Card.Id,
            [new TranscriptionChunkChoice(new TranscriptionDelta(delta), entry)]), ct);
    }
}

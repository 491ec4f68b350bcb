using System.Runtime.CompilerServices;
using System.Threading.Channels;
using MLNode.Engines.Llm;
using MLNode.Engines.Llm.Sampling;
using MLNode.Engines.Llm.Tokenization;

namespace MLNode.Worker.Api;

/// <summary>One generated token as the API shows it: its text delta, and whether it appears in content and logprobs.</summary>
public sealed record CompletionPiece(TokenLogprob Token, string Text, bool Visible, bool Last);

/// <summary>
/// Turns the generator's tokens into what the OpenAI API returns: text deltas that never split a
/// character, the stop token kept out of content and logprobs (as vLLM does), and stop strings that
/// end the completion early (the text is cut before the stop string, and generation is cancelled).
/// </summary>
public sealed class CompletionStream(
    ChannelReader<GeneratedToken> tokens, ByteLevelBpeTokenizer tokenizer, IReadOnlySet<int> stopTokens,
    bool skipSpecialTokens, IReadOnlyList<string> stopStrings, CancellationTokenSource stopGeneration)
{
    private readonly StreamingDecoder _decoder = new(tokenizer, skipSpecialTokens);
    private string _text = "";

    /// <summary>"stop", "length" or "abort"; set once the stream has ended.</summary>
    public string? FinishReason { get; private set; }

    public async IAsyncEnumerable<CompletionPiece> ReadAllAsync([EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var generated in tokens.ReadAllAsync(ct))
        {
            var token = generated.Token;
            var isStopToken = generated.Finish == Engines.Llm.FinishReason.Stop && stopTokens.Contains(token.Token);
            var delta = isStopToken ? "" : _decoder.Append(token.Token);
            var (cut, hit) = CutAtStopString(delta);
            var last = generated.Finish is not null || hit;
            if (last)
            {
                if (!hit) cut += _decoder.Flush();
                FinishReason = hit || generated.Finish == Engines.Llm.FinishReason.Stop ? "stop" : "length";
            }
            yield return new CompletionPiece(token, cut, !isStopToken, last);
            if (hit)
            {
                await stopGeneration.CancelAsync();
                yield break;
            }
        }
        FinishReason ??= "abort";
    }

    /// <summary>Appends <paramref name="delta"/> to the text so far, cutting it where a stop string begins.</summary>
    private (string Text, bool Hit) CutAtStopString(string delta)
    {
        var before = _text.Length;
        _text += delta;
        foreach (var stop in stopStrings)
        {
            var at = _text.IndexOf(stop, Math.Max(0, before - stop.Length + 1), StringComparison.Ordinal);
            if (at >= 0) return (at >= before ? _text[before..at] : "", true);
        }
        return (delta, false);
    }
}

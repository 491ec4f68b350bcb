using MLNode.Engines.Llm.Sampling;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Asr.Whisper;

/// <summary>
/// One window of a batch: its row of the encoder output, its prompt, its sampling (temperature and seed included),
/// how many tokens it may emit (the end token included), for replay the tokens to emit, where its tokens stream to,
/// and whether its job has been given up (cancelled or failed), which takes it out of the batch.
/// </summary>
internal sealed record WindowRequest(
    int EncoderRow,
    IReadOnlyList<int> Prompt,
    SamplingParams Sampling,
    int MaxTokens,
    IReadOnlyList<int>? Forced,
    Action<TokenLogprob>? OnToken,
    Func<bool> Abandoned);

/// <summary>
/// One decoded window: its tokens without the end token (with the logprobs its sampling asked for), the logprob of
/// each token and of the end token under the rule-masked distribution at temperature 1 (for openai's average
/// logprob), whether it ended with the end token rather than at its length limit, and its no-speech probability.
/// </summary>
internal sealed record WindowDecoding(WindowRequest Request, IReadOnlyList<TokenLogprob> Tokens, IReadOnlyList<double> RuleLogprobs, bool Ended, double? NoSpeechProb);

/// <summary>
/// Decodes a batch of windows whose prompts have the same length, in lockstep: their cross-attention keys and values
/// are computed once, the prompts are one forward, then every step feeds one token per live window and picks the next
/// from the rule-masked logits. A window that ends (or whose job is given up) leaves the batch and its cache rows are
/// reclaimed, so the work per step shrinks with the live windows.
/// </summary>
internal sealed class WhisperBatchDecoder(WhisperForConditionalGeneration model, WhisperKvCache cache, WhisperSpecialTokens special) : IDisposable
{
    private readonly WhisperDecodeStep _step = new(model, cache);

    public void Dispose() => _step.Dispose();

    /// <param name="encoderOutput">[rows, source positions, d]; each request names its row.</param>
    /// <param name="startOfTranscript">where &lt;|startoftranscript|&gt; sits in every prompt (its logits give the no-speech probability).</param>
    public IReadOnlyList<WindowDecoding> Decode(Tensor encoderOutput, IReadOnlyList<WindowRequest> requests, int startOfTranscript,
        WhisperLogitRules rules, CancellationToken ct)
    {
        var n = requests.Count;
        var device = encoderOutput.device;
        var promptLength = requests[0].Prompt.Count;
        if (requests.Any(r => r.Prompt.Count != promptLength))
            throw new ArgumentException("a batch decodes prompts of one length", nameof(requests));
        if (promptLength + requests.Max(r => r.MaxTokens) - 1 > cache.Positions)
            throw new ArgumentException($"prompts of {promptLength} tokens leave no room for {requests.Max(r => r.MaxTokens)} more in {cache.Positions} decoder positions", nameof(requests));
        var tokens = requests.Select(_ => new List<TokenLogprob>()).ToArray();
        var sampled = requests.Select(_ => new List<int>()).ToArray();
        var ruleLogprobs = requests.Select(_ => new List<double>()).ToArray();
        var ended = new bool[n];
        double[]? noSpeech;

        Tensor logits;
        using (var prefill = NewDisposeScope())
        {
            cache.Start(n);
            model.AttendTo(encoderOutput.index_select(0, tensor(requests.Select(r => (long)r.EncoderRow).ToArray(), device: device)), cache);
            var ids = tensor(requests.SelectMany(r => r.Prompt).Select(t => (long)t).ToArray(), [n, promptLength], device: device);
            var hidden = model.Decode(ids, 0, cache);
            // Logits at the start of transcript (for no-speech) and at the last prompt token (for the first step) only.
            var at = model.Logits(hidden.index_select(1, tensor(new long[] { startOfTranscript, promptLength - 1 }, device: device)));
            noSpeech = special.NoSpeech is { } ns ? at.select(1, 0).softmax(-1).select(1, ns).to(ScalarType.Float64).cpu().data<double>().ToArray() : null;
            logits = at.select(1, 1).contiguous().DetachFromDisposeScope();
        }
        try
        {
            var live = Enumerable.Range(0, n).ToList();
            for (var step = 0; ; step++)
            {
                ct.ThrowIfCancellationRequested();
                using var stepScope = NewDisposeScope();
                var masked = rules.Apply(logits, live.Select(r => (IReadOnlyList<int>)sampled[r]).ToArray());
                var forced = live.Select(r => Forced(requests[r], step)).ToArray();
                var picks = TokenSampler.NextBatch(masked, live.Select(r => requests[r].Sampling).ToArray(), live.Select(_ => step).ToArray(), forced, unmasked: logits);
                var chosen = tensor(picks.Select(p => (long)p.Token).ToArray(), device: device).unsqueeze(1);
                var atTemperature1 = masked.log_softmax(-1).gather(1, chosen).squeeze(1).to(ScalarType.Float64).cpu().data<double>().ToArray();

                var keep = new List<int>();
                for (var i = 0; i < live.Count; i++)
                {
                    var r = live[i];
                    ruleLogprobs[r].Add(atTemperature1[i]);
                    if (picks[i].Token == special.EndOfText)
                    {
                        ended[r] = true;
                        continue;
                    }
                    tokens[r].Add(picks[i]);
                    sampled[r].Add(picks[i].Token);
                    requests[r].OnToken?.Invoke(picks[i]);
                    if (sampled[r].Count < requests[r].MaxTokens && !requests[r].Abandoned()) keep.Add(i);
                }
                if (keep.Count == 0) break;
                if (keep.Count < live.Count)
                {
                    cache.Keep(keep);
                    live = keep.Select(i => live[i]).ToList();
                }
                var next = tensor(live.Select(r => (long)sampled[r][^1]).ToArray(), device: device).unsqueeze(1);
                var nextLogits = _step.Logits(next, promptLength + step).DetachFromDisposeScope();
                logits.Dispose();
                logits = nextLogits;
            }
        }
        finally
        {
            logits.Dispose();
        }
        return Enumerable.Range(0, n).Select(r => new WindowDecoding(requests[r], tokens[r], ruleLogprobs[r], ended[r], noSpeech?[r])).ToList();
    }

    /// <summary>Replay emits the executor's tokens, then the end token; decoding proper forces nothing.</summary>
    private int? Forced(WindowRequest request, int step) =>
        request.Forced is not { } forced ? null : step < forced.Count ? forced[step] : special.EndOfText;
}

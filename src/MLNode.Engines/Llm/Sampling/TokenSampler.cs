using MLNode.Protocol.Poc;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Llm.Sampling;

/// <summary>
/// Picks the next token from one row of logits the way Gonka's vLLM sampler does — temperature, then
/// min-p, then top-k, then top-p; greedy is the argmax — and reports log-probabilities from the raw or
/// the processed distribution. A seeded draw depends only on (seed, step), never on the batch it ran in.
/// </summary>
public static class TokenSampler
{
    /// <param name="logits">float32 [V] on any device.</param>
    /// <param name="step">index of the token being generated (0 for the first), for the seeded draw.</param>
    /// <param name="forced">the token to emit instead of sampling (validator replay); its logprob is still this model's.</param>
    /// <param name="unmasked">
    /// the model's own logits when <paramref name="logits"/> carry decoding-rule masks as −∞ (Whisper's suppression and
    /// timestamp rules): the token comes from the masked logits, Raw logprobs from these.
    /// </param>
    public static TokenLogprob Next(Tensor logits, SamplingParams p, int step, int? forced = null, Tensor? unmasked = null)
    {
        using var scope = NewDisposeScope();
        var raw = logits.log_softmax(-1);
        var processed = p.Greedy ? raw : Processed(logits, p);
        var token = forced ?? (p.Greedy ? (int)raw.argmax().item<long>() : Draw(processed, p.Seed, step));
        var reported = p.Mode == LogprobsMode.Raw ? unmasked?.log_softmax(-1) ?? raw : processed;
        return new TokenLogprob(token, reported[token].item<float>(), Top(reported, p.TopLogprobs));
    }

    /// <summary>
    /// The next token of every row of <paramref name="logits"/> [B, V]. Greedy rows (whose raw and processed
    /// distributions coincide) share one <see cref="GreedyTokens"/> — a fused kernel on the GPU — and
    /// one copy to the host, instead of several round trips per sequence; sampled rows go through
    /// <see cref="Next"/> one by one. <paramref name="unmasked"/> [B, V], when given, are the logits before
    /// decoding-rule masks, as in <see cref="Next"/>.
    /// </summary>
    public static TokenLogprob[] NextBatch(Tensor logits, IReadOnlyList<SamplingParams> p, IReadOnlyList<int> steps, IReadOnlyList<int?> forced, Tensor? unmasked = null)
    {
        var result = new TokenLogprob[p.Count];
        var greedy = Enumerable.Range(0, p.Count).Where(i => p[i].Greedy).ToArray();
        if (greedy.Length > 0)
        {
            using var scope = NewDisposeScope();
            var index = greedy.Length == p.Count ? null : tensor(greedy.Select(i => (long)i).ToArray(), device: logits.device);
            Tensor Rows(Tensor all) => index is null ? all : all.index_select(0, index);
            var rows = Rows(logits);
            var k = Math.Max(1, greedy.Max(i => p[i].TopLogprobs));
            var chosen = tensor(greedy.Select(i => (long)(forced[i] ?? -1)).ToArray(), device: logits.device);
            if (unmasked is not null)
            {
                // The token is the masked argmax; Raw rows report the unmasked distribution at it, Processed rows the masked one.
                chosen = where(chosen < 0, rows.argmax(-1), chosen);
                var raw = tensor(greedy.Select(i => p[i].Mode == LogprobsMode.Raw).ToArray(), device: logits.device).unsqueeze(1);
                rows = where(raw, Rows(unmasked), rows);
            }
            using var tokens = GreedyTokens.Launch(rows, k, chosen);
            var read = tokens.Read([.. greedy.Select(i => p[i].TopLogprobs)]);
            for (var row = 0; row < greedy.Length; row++) result[greedy[row]] = read[row];
        }
        for (var i = 0; i < p.Count; i++)
            result[i] ??= Next(logits[i], p[i], steps[i], forced[i], unmasked?[i]);
        return result;
    }

    /// <summary>The distribution sampled from: masked entries are −∞.</summary>
    private static Tensor Processed(Tensor logits, SamplingParams p)
    {
        var scaled = logits / p.Temperature;
        if (p.MinP > 0)
        {
            var probs = scaled.softmax(-1);
            scaled = scaled.masked_fill(probs < probs.max() * p.MinP, double.NegativeInfinity);
        }
        if (p.TopK > 0 && p.TopK < scaled.shape[0])
        {
            var kth = scaled.topk(p.TopK).values[-1];
            scaled = scaled.masked_fill(scaled < kth, double.NegativeInfinity);
        }
        if (p.TopP < 1.0)
        {
            var (sorted, order) = scaled.sort(descending: true);
            var cumulative = sorted.softmax(-1).cumsum(-1);
            // Drop a token once the tokens before it already cover top_p; the first always stays.
            var drop = (cumulative - sorted.softmax(-1)) > p.TopP;
            scaled = scaled.scatter(0, order, sorted.masked_fill(drop, double.NegativeInfinity));
        }
        return scaled.log_softmax(-1);
    }

    /// <summary>Inverse-CDF draw with a counter-based uniform: reproducible for a seed on any device and batch.</summary>
    private static int Draw(Tensor logprobs, long? seed, int step)
    {
        var probs = logprobs.exp().to(ScalarType.Float64).cpu().data<double>().ToArray();
        var key = seed is { } s ? (uint)(s ^ (s >> 32)) : (uint)Random.Shared.Next();
        var u = (Murmur3.Mix((uint)step, key) + 0.5) / 4294967296.0 * probs.Sum();
        var acc = 0.0;
        for (var i = 0; i < probs.Length; i++)
        {
            acc += probs[i];
            if (u < acc && probs[i] > 0) return i;
        }
        return Array.FindLastIndex(probs, v => v > 0);
    }

    /// <summary>The k best (token, logprob) pairs; slots past the finite entries take the lowest masked ids, as the fork pads them.</summary>
    private static IReadOnlyList<(int, float)> Top(Tensor logprobs, int k)
    {
        if (k <= 0) return [];
        var (values, ids) = logprobs.topk(k);
        var v = values.cpu().data<float>().ToArray();
        var t = ids.cpu().data<long>().ToArray();
        var top = new List<(int, float)>(k);
        for (var i = 0; i < k && float.IsFinite(v[i]); i++) top.Add(((int)t[i], v[i]));
        if (top.Count < k)
        {
            var taken = top.Select(e => e.Item1).ToHashSet();
            var masked = (logprobs == double.NegativeInfinity).nonzero().flatten();
            foreach (var id in masked.narrow(0, 0, Math.Min(masked.shape[0], k + taken.Count)).cpu().data<long>().ToArray())
                if (top.Count < k && !taken.Contains((int)id)) top.Add(((int)id, float.NegativeInfinity));
        }
        return top;
    }
}

using MLNode.Protocol.Poc;
using MLNode.Runtime.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Llm.Sampling;

/// <summary>
/// The next token of every row of a step's logits [B, V], picked the way Gonka's vLLM sampler does — temperature, then
/// min-p, then top-k, then top-p; greedy is the argmax; a replay emits its forced token — with log-probabilities from
/// the raw or the processed distribution. Computed for the whole batch on the logits' device (greedy rows by the fused
/// <see cref="BatchLogprobs"/> kernel), copied to the host without blocking and read when the host needs them; the
/// tokens also stay on the device (<see cref="Next"/>), so the generator can queue the next step from them before it
/// reads them. A seeded draw depends only on (seed, step), never on the batch it ran in.
/// </summary>
public sealed class StepTokens : IDisposable
{
    private readonly HostCopy _copy;
    private readonly IReadOnlyList<SamplingParams> _p;
    private readonly int _k;

    private StepTokens(Tensor next, HostCopy copy, IReadOnlyList<SamplingParams> p, int k) => (Next, _copy, _p, _k) = (next, copy, p, k);

    /// <summary>int64 [B] on the logits' device: each row's token.</summary>
    public Tensor Next { get; }

    /// <param name="logits">[B, V] of any floating type.</param>
    /// <param name="steps">index of the token each row generates (0 for its first), for the seeded draw.</param>
    /// <param name="forced">the token a row emits instead of sampling (validator replay); its logprob is still this model's.</param>
    /// <param name="unmasked">
    /// the model's own logits [B, V] when <paramref name="logits"/> carry decoding-rule masks as −∞ (Whisper's suppression
    /// and timestamp rules): the token comes from the masked logits, Raw logprobs from these.
    /// </param>
    public static StepTokens Launch(Tensor logits, IReadOnlyList<SamplingParams> p, IReadOnlyList<int> steps, IReadOnlyList<int?> forced, Tensor? unmasked = null)
    {
        using var scope = NewDisposeScope();
        var k = Math.Max(1, p.Max(x => x.TopLogprobs));
        var parts = new List<(Tensor? Index, Tensor[] Outputs)>();
        foreach (var greedy in new[] { true, false })
        {
            var rows = Enumerable.Range(0, p.Count).Where(i => p[i].Greedy == greedy).ToArray();
            if (rows.Length == 0) continue;
            // The rows of this kind, in the batch's order: all of them need no gather.
            var index = rows.Length == p.Count ? null : PinnedUpload.Int64([.. rows.Select(i => (long)i)], logits.device);
            var chosen = PinnedUpload.Int64([.. rows.Select(i => (long)(forced[i] ?? -1))], logits.device);
            var part = rows.Select(i => p[i]).ToArray();
            parts.Add((index, greedy ? Greedy(logits, unmasked, index, part, chosen, k) : Sampled(logits, unmasked, index, part, rows.Select(i => steps[i]), chosen, k)));
        }
        // values [B, k], ids [B, k], chosen logprob [B], token [B], lowest masked ids [B, k]
        var outputs = parts.Count == 1 ? parts[0].Outputs : Merge(parts, p.Count, logits.device);
        return new StepTokens(outputs[3].DetachFromDisposeScope(), HostCopy.Start(outputs), p, k);
    }

    /// <summary>Each row's token, its logprob and its best entries (as many as its request asks), once the copy has landed.</summary>
    public TokenLogprob[] Read()
    {
        var host = _copy.Wait();
        var values = host[0].data<float>().ToArray();
        var ids = host[1].data<long>().ToArray();
        var chosenLogprob = host[2].data<float>().ToArray();
        var next = host[3].data<long>().ToArray();
        var fill = host[4].data<long>().ToArray();
        return [.. Enumerable.Range(0, _p.Count).Select(row => new TokenLogprob((int)next[row], chosenLogprob[row], Top(row)))];

        // A sampled row's entries past the finite ones take the lowest masked ids, as the fork pads them.
        IReadOnlyList<(int, float)> Top(int row)
        {
            var top = new List<(int, float)>(_p[row].TopLogprobs);
            for (var j = row * _k; top.Count < _p[row].TopLogprobs && (_p[row].Greedy || float.IsFinite(values[j])); j++) top.Add(((int)ids[j], values[j]));
            for (var j = row * _k; top.Count < _p[row].TopLogprobs; j++) top.Add(((int)fill[j], float.NegativeInfinity));
            return top;
        }
    }

    public void Dispose()
    {
        _copy.Dispose();
        Next.Dispose();
    }

    /// <summary>Greedy rows: raw and processed distributions coincide; one fused pass reads the logits once.</summary>
    private static Tensor[] Greedy(Tensor logits, Tensor? unmasked, Tensor? index, SamplingParams[] p, Tensor chosen, int k)
    {
        var subset = Rows(logits, index);
        if (unmasked is not null)
        {
            // The token is the masked argmax; Raw rows report the unmasked distribution at it, Processed rows the masked one.
            chosen = where(chosen < 0, subset.argmax(-1), chosen);
            subset = where(Column(tensor(p.Select(x => x.Mode == LogprobsMode.Raw).ToArray()), logits.device), Rows(unmasked, index), subset);
        }
        var (values, ids, chosenLogprob, argmax) = BatchLogprobs.Compute(subset, k, chosen);
        return [values, ids, chosenLogprob, where(chosen < 0, argmax, chosen), ids];
    }

    /// <summary>Sampled rows: the processed distribution of each, a seeded inverse-CDF draw from it, the reported logprobs.</summary>
    private static Tensor[] Sampled(Tensor logits, Tensor? unmasked, Tensor? index, SamplingParams[] sp, IEnumerable<int> steps, Tensor chosen, int k)
    {
        var device = logits.device;
        var subset = Rows(logits, index).to(ScalarType.Float32);
        var processed = Processed(subset, sp);

        // Inverse CDF with a counter-based uniform: u in (0, 1) from (seed, step), against the running sum in float64.
        var u = Column(tensor(sp.Zip(steps, (x, step) => (Murmur3.Mix((uint)step, DrawKey(x.Seed)) + 0.5) / 4294967296.0).ToArray()), device);
        var probs = processed.exp().to(ScalarType.Float64);
        var cumulative = probs.cumsum(-1);
        var positive = probs > 0;
        var hit = (cumulative > u * cumulative[TensorIndex.Colon, TensorIndex.Slice(-1)]).logical_and(positive);
        var vocab = probs.shape[1];
        var lastPositive = positive.flip(-1).to(ScalarType.Byte).argmax(-1).neg().add(vocab - 1);
        var drawn = where(hit.any(-1), hit.to(ScalarType.Byte).argmax(-1), lastPositive);
        var token = where(chosen < 0, drawn, chosen);

        var reported = processed;
        if (sp.Any(x => x.Mode == LogprobsMode.Raw))
        {
            var raw = (unmasked is null ? subset : Rows(unmasked, index).to(ScalarType.Float32)).log_softmax(-1);
            reported = where(Column(tensor(sp.Select(x => x.Mode == LogprobsMode.Raw).ToArray()), device), raw, processed);
        }
        var (values, ids) = reported.topk(k);
        // The k lowest ids whose logprob is −∞: the largest of −id over the masked entries.
        var negativeIds = arange(vocab, ScalarType.Float32, device).neg().unsqueeze(0).expand_as(reported);
        var (_, lowestMasked) = negativeIds.masked_fill(reported != double.NegativeInfinity, double.NegativeInfinity).topk(k);
        return [values, ids, reported.gather(1, token.unsqueeze(1)).squeeze(1), token, lowestMasked];
    }

    /// <summary>
    /// log_softmax of the distribution sampled from, per row: logits / T, then min-p, top-k and top-p masks (−∞) where the
    /// row asks for them.
    /// </summary>
    private static Tensor Processed(Tensor logits, SamplingParams[] p)
    {
        Tensor Floats(IEnumerable<double> values) => Column(tensor(values.Select(v => (float)v).ToArray()), logits.device);
        var scaled = logits / Floats(p.Select(x => x.Temperature));
        if (p.Any(x => x.MinP > 0))
        {
            var probs = scaled.softmax(-1);
            scaled = scaled.masked_fill(probs < probs.amax([-1], keepdim: true) * Floats(p.Select(x => x.MinP)), double.NegativeInfinity);
        }
        var vocab = scaled.shape[1];
        var topK = p.Any(x => x.TopK > 0 && x.TopK < vocab);
        if (!topK && p.All(x => x.TopP >= 1.0)) return scaled.log_softmax(-1);
        // Both masks cut a tail of the descending order: one sort serves them, one scatter puts the result back.
        var (sorted, order) = scaled.sort(-1, descending: true);
        if (topK)
        {
            // A row without top-k compares against its smallest logit, which masks nothing.
            var kth = sorted.gather(1, Column(tensor(p.Select(x => x.TopK > 0 && x.TopK < vocab ? x.TopK - 1L : vocab - 1).ToArray()), logits.device));
            sorted = sorted.masked_fill(sorted < kth, double.NegativeInfinity);
        }
        if (p.Any(x => x.TopP < 1.0))
        {
            var mass = sorted.softmax(-1);
            // Drop a token once the tokens before it already cover top_p; the first always stays. Rows at top_p = 1 drop
            // nothing (their running sum may pass 1 by rounding).
            var drop = ((mass.cumsum(-1) - mass) > Floats(p.Select(x => x.TopP))).logical_and(Column(tensor(p.Select(x => x.TopP < 1.0).ToArray()), logits.device));
            sorted = sorted.masked_fill(drop, double.NegativeInfinity);
        }
        return scaled.scatter(1, order, sorted).log_softmax(-1);
    }

    private static Tensor Rows(Tensor all, Tensor? index) => index is null ? all : all.index_select(0, index);

    /// <summary>Per-row values as a [rows, 1] column on <paramref name="device"/>.</summary>
    private static Tensor Column(Tensor values, Device device) => PinnedUpload.Of(values, device).unsqueeze(1);

    private static uint DrawKey(long? seed) => seed is { } s ? (uint)(s ^ (s >> 32)) : (uint)Random.Shared.Next();

    /// <summary>The greedy and the sampled rows' outputs, each put back at its rows of the batch.</summary>
    private static Tensor[] Merge(List<(Tensor? Index, Tensor[] Outputs)> parts, int batch, Device device)
    {
        var merged = parts[0].Outputs.Select(t => empty([batch, .. t.shape[1..]], t.dtype, device)).ToArray();
        foreach (var (index, outputs) in parts)
            for (var i = 0; i < merged.Length; i++) merged[i].index_copy_(0, index!, outputs[i]);
        return merged;
    }
}

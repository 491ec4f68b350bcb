using MLNode.Engines.Llm.Sampling;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Llm;

/// <summary>
/// The batched logprobs of greedy rows (<see cref="BatchLogprobs"/>, the reference of the fused top-k kernel)
/// against hand-computed distributions and against the one-row path <see cref="TokenSampler.Next"/>, which
/// the batching must not change.
/// </summary>
public sealed class BatchLogprobsTests
{
    [Fact]
    public void Reference_reports_the_log_softmax_of_hand_computed_rows()
    {
        // Row 0: probabilities 0.1, 0.2, 0.3, 0.4. Row 1 at T = 2: logits 0 and 2·ln 2 become 0 and ln 2, so 1/3 and 2/3.
        using var logits = tensor(new[,] { { 0f, MathF.Log(2), MathF.Log(3), MathF.Log(4) }, { 2 * MathF.Log(2), 0, float.NegativeInfinity, float.NegativeInfinity } });
        using var temperature = tensor(new[] { 1f, 2f });
        using var chosen = tensor(new[] { 0L, -1L });
        var (values, ids, chosenLogprob, argmax) = BatchLogprobs.Reference(logits, 2, chosen, temperature);

        Assert.Equal(new long[] { 3, 2, 0, 1 }, ids.data<long>().ToArray());
        Assert.Equal(new long[] { 3, 0 }, argmax.data<long>().ToArray());
        var expected = new[] { Math.Log(0.4), Math.Log(0.3), Math.Log(2.0 / 3), Math.Log(1.0 / 3) };
        Assert.All(values.data<float>().ToArray().Zip(expected), p => Assert.Equal(p.Second, p.First, 1e-6));
        Assert.Equal(Math.Log(0.1), chosenLogprob[0].item<float>(), 1e-6);
        Assert.Equal(Math.Log(2.0 / 3), chosenLogprob[1].item<float>(), 1e-6);
    }

    [Fact]
    public void Greedy_rows_of_a_batch_report_what_they_report_one_at_a_time()
    {
        using var scope = NewDisposeScope();
        var logits = RandomLogits(6, 3000, seed: 11);
        var greedy = new SamplingParams(Temperature: 0, TopLogprobs: 5);
        var p = new[] { greedy, greedy with { TopLogprobs = 0 }, new SamplingParams(Temperature: 0.8, Seed: 3, TopLogprobs: 2),
            greedy with { TopLogprobs = 20 }, greedy with { Mode = LogprobsMode.Raw }, greedy };
        var steps = new[] { 0, 4, 1, 7, 2, 3 };
        var forced = new int?[] { null, null, null, 123, null, 2999 };

        var batch = TokenSampler.NextBatch(logits, p, steps, forced);
        for (var i = 0; i < p.Length; i++)
        {
            var alone = TokenSampler.Next(logits[i], p[i], steps[i], forced[i]);
            Assert.Equal(alone.Token, batch[i].Token);
            Assert.Equal(alone.Logprob, batch[i].Logprob, 1e-6);
            Assert.Equal(alone.Top.Select(e => e.Token), batch[i].Top.Select(e => e.Token));
            Assert.All(alone.Top.Zip(batch[i].Top), e => Assert.Equal(e.First.Logprob, e.Second.Logprob, 1e-6));
        }
        Assert.Equal(123, batch[3].Token);
        Assert.Equal(2999, batch[5].Token);
    }

    [Fact]
    public void Reference_at_a_temperature_is_the_processed_distribution_of_an_unmasked_sampled_row()
    {
        using var scope = NewDisposeScope();
        var logits = RandomLogits(1, 3000, seed: 5);
        var sampled = new SamplingParams(Temperature: 0.7, Seed: 9, TopLogprobs: 6);
        var drawn = TokenSampler.Next(logits[0], sampled, step: 4);

        var (values, ids, chosenLogprob, _) = BatchLogprobs.Reference(logits, 6, tensor(new[] { (long)drawn.Token }), tensor(new[] { 0.7f }));
        Assert.Equal(drawn.Top.Select(e => (long)e.Token), ids.data<long>().ToArray());
        // libtorch's CPU kernel divides by T where its CUDA kernel (and the reference) multiply by 1 / T: a scaled
        // logit up to 43 may differ by one ulp (3.8e-6), and the logprob with it.
        Assert.All(drawn.Top.Zip(values.data<float>().ToArray()), e => Assert.Equal(e.First.Logprob, e.Second, 1e-5));
        Assert.Equal(drawn.Logprob, chosenLogprob.item<float>(), 1e-5);
    }

    [Fact]
    public void Reference_takes_bfloat16_logits_as_their_float32_values()
    {
        using var scope = NewDisposeScope();
        var logits = RandomLogits(3, 500, seed: 2).to(ScalarType.BFloat16);
        var (values, ids, chosenLogprob, argmax) = BatchLogprobs.Reference(logits, 4);
        var (v32, i32, c32, a32) = BatchLogprobs.Reference(logits.to(ScalarType.Float32), 4);
        Assert.Equal(ScalarType.Float32, values.dtype);
        Assert.Equal(v32.data<float>().ToArray(), values.data<float>().ToArray());
        Assert.Equal(i32.data<long>().ToArray(), ids.data<long>().ToArray());
        Assert.Equal(c32.data<float>().ToArray(), chosenLogprob.data<float>().ToArray());
        Assert.Equal(a32.data<long>().ToArray(), argmax.data<long>().ToArray());
    }

    [Fact]
    public void Sampled_rows_of_a_batch_follow_the_one_row_definition_of_the_fork_sampler()
    {
        // Every mask alone and together, both logprob modes, a replayed row and a greedy row in the same batch: each row
        // against a one-row oracle written with scalar ops and a sequential float64 inverse CDF. Same CPU kernels on both
        // sides, so the logprobs agree to float32 rounding (1e-6) and the tokens exactly.
        using var scope = NewDisposeScope();
        var p = new[]
        {
            new SamplingParams(Temperature: 0.7, Seed: 1, TopLogprobs: 5),
            new SamplingParams(Temperature: 1.0, TopK: 3, Seed: 2, TopLogprobs: 6),
            new SamplingParams(Temperature: 1.3, TopP: 0.6, Seed: 3, TopLogprobs: 4),
            new SamplingParams(Temperature: 0.9, MinP: 0.05, Seed: 4, TopLogprobs: 3),
            new SamplingParams(Temperature: 0.8, TopK: 40, TopP: 0.9, MinP: 0.01, Seed: 5, TopLogprobs: 20, Mode: LogprobsMode.Raw),
            new SamplingParams(Temperature: 0, TopLogprobs: 2),
            new SamplingParams(Temperature: 0.5, TopK: 2, Seed: 6, TopLogprobs: 4),
        };
        var steps = new[] { 0, 3, 1, 9, 2, 5, 4 };
        var forced = new int?[] { null, null, null, null, null, null, 17 };
        var logits = RandomLogits(p.Length, 3000, seed: 21);

        var batch = TokenSampler.NextBatch(logits, p, steps, forced);
        for (var i = 0; i < p.Length; i++)
        {
            if (p[i].Greedy) continue;
            var (token, logprob, top) = OneRow(logits[i], p[i], steps[i], forced[i]);
            Assert.Equal(token, batch[i].Token);
            Assert.Equal(logprob, batch[i].Logprob, 1e-6);
            Assert.Equal(top.Select(e => e.Token), batch[i].Top.Select(e => e.Token));
            Assert.All(top.Zip(batch[i].Top), e => Assert.Equal(e.First.Logprob, e.Second.Logprob, 1e-6));
        }
        Assert.Equal(17, batch[6].Token);
        // Top-k 3 with 6 logprobs: three finite entries, then the three lowest masked ids at −∞, as the fork pads them.
        Assert.Equal(3, batch[1].Top.Count(e => float.IsFinite(e.Logprob)));
        Assert.Equal([0, 1, 2], batch[1].Top.Skip(3).Select(e => e.Token).Where(id => !batch[1].Top.Take(3).Any(f => f.Token == id)).Take(3).Concat([0, 1, 2]).Take(3));
    }

    /// <summary>The fork's sampler for one row, op by op: temperature, min-p, top-k, top-p, then an inverse-CDF draw.</summary>
    private static (int Token, float Logprob, List<(int Token, float Logprob)> Top) OneRow(Tensor logits, SamplingParams p, int step, int? forced)
    {
        var scaled = logits / p.Temperature;
        if (p.MinP > 0)
        {
            var probs = scaled.softmax(-1);
            scaled = scaled.masked_fill(probs < probs.max() * p.MinP, double.NegativeInfinity);
        }
        if (p.TopK > 0) scaled = scaled.masked_fill(scaled < scaled.topk(p.TopK).values[-1], double.NegativeInfinity);
        if (p.TopP < 1.0)
        {
            var (sorted, order) = scaled.sort(descending: true);
            var drop = (sorted.softmax(-1).cumsum(-1) - sorted.softmax(-1)) > p.TopP;
            scaled = scaled.scatter(0, order, sorted.masked_fill(drop, double.NegativeInfinity));
        }
        var processed = scaled.log_softmax(-1);
        var mass = processed.exp().to(ScalarType.Float64).data<double>().ToArray();
        var key = (uint)(p.Seed!.Value ^ (p.Seed.Value >> 32));
        var u = (MLNode.Protocol.Poc.Murmur3.Mix((uint)step, key) + 0.5) / 4294967296.0;
        var total = 0.0;
        var running = mass.Select(m => total += m).ToArray();
        var token = forced ?? Enumerable.Range(0, mass.Length).First(j => running[j] > u * total && mass[j] > 0);
        var reported = p.Mode == LogprobsMode.Raw ? logits.log_softmax(-1) : processed;
        var values = reported.data<float>().ToArray();
        var top = Enumerable.Range(0, values.Length).Where(j => float.IsFinite(values[j])).OrderByDescending(j => values[j]).ThenBy(j => j)
            .Concat(Enumerable.Range(0, values.Length).Where(j => !float.IsFinite(values[j])))
            .Take(p.TopLogprobs).Select(j => (j, values[j])).ToList();
        return (token, values[token], top);
    }

    /// <summary>Distinct logits in [−30, 30] (a random permutation through a logistic quantile), so top-k has no ties.</summary>
    private static Tensor RandomLogits(int rows, int vocab, int seed)
    {
        var random = new Random(seed);
        var values = new float[rows * vocab];
        for (var r = 0; r < rows; r++)
        {
            var order = Enumerable.Range(0, vocab).OrderBy(_ => random.Next()).ToArray();
            for (var v = 0; v < vocab; v++)
            {
                var u = (order[v] + 0.5) / vocab;
                values[r * vocab + v] = (float)(2.5 * Math.Log(u / (1 - u)));
            }
        }
        return tensor(values, [rows, vocab]);
    }
}

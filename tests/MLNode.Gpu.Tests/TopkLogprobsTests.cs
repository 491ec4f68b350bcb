using MLNode.Engines.Llm.Sampling;
using MLNode.Runtime.Native;
using static TorchSharp.torch;

namespace MLNode.Gpu.Tests;

/// <summary>
/// The fused top-k logprobs kernel against <see cref="BatchLogprobs.Reference"/> (libtorch's log_softmax, topk and
/// gather on the same GPU). Ids and argmax must be equal; inputs are built without ties, except in the test that
/// checks the documented order of ties.
/// </summary>
/// <remarks>
/// Values: both compute x − L with L = max + log(Σ exp(x − max)) in fp32, but sum in different orders (the kernel
/// per thread, warp and slice of the row, then the slices in a fixed tree; and its exp is the hardware one), so
/// log Σ differs by ~1e-7 relative, at most a few 1e-6 over 152k terms.
/// That can move L across one rounding step of its own magnitude, and x − L by one more of the result's, hence
/// |ours − reference| ≤ 2e-6 + ulp(L) + ulp(value) (≈ 1e-5 at L ≈ 40, values ≈ −60).
/// </remarks>
public class TopkLogprobsTests
{
    private const int Vocab = 151936;

    [Theory]
    [InlineData(1, Vocab, 20)]
    [InlineData(64, Vocab, 20)]
    [InlineData(5, 1003, 7)]  // rows start off a 16-byte boundary: head and tail elements outside the vectors
    [InlineData(3, 32, 32)]   // k = V = the largest k
    [InlineData(3, 65537, 20)]  // rows after the first start off a 16-byte boundary, each cut into slices
    [InlineData(2, 200000, 32)]
    public void Float32_rows_match_the_reference(int rows, int vocab, int k)
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        var logits = DistinctLogits(rows, vocab, seed: rows + vocab).to(cuda);
        var chosen = ChosenIds(rows, vocab, seed: k).to(cuda);
        Compare(logits, k, chosen, null, $"f32 {rows}x{vocab} k={k}");
    }

    [Fact]
    public void Rows_of_a_view_off_a_vector_boundary_match_the_reference()
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        // Skipping one element of a contiguous buffer moves every row start 4 bytes off alignment.
        var buffer = DistinctLogits(1, 4 * Vocab + 1, seed: 3).to(cuda);
        var logits = buffer[0, TensorIndex.Slice(1)].view(4, Vocab);
        Compare(logits, 20, ChosenIds(4, Vocab, seed: 4).to(cuda), null, "f32 view at offset 1");
    }

    [Fact]
    public void Temperature_scales_each_row_as_the_processed_distribution_does()
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        var logits = DistinctLogits(5, Vocab, seed: 8).to(cuda);
        var temperature = tensor(new[] { 0.5f, 0.7f, 1f, 1.3f, 2f }).to(cuda);
        Compare(logits, 20, ChosenIds(5, Vocab, seed: 9).to(cuda), temperature, "f32 with temperatures");
    }

    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    public void Half_precision_rows_match_the_reference_on_their_float32_values(ScalarType dtype)
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        // Half-precision logits tie all over the bulk; 40 planted values 10, 10.25, … (exact in both types) keep the top untied.
        const int rows = 8, planted = 40;
        var generator = new Generator(17);
        var logits = (rand([rows, Vocab], generator: generator) * 4 - 2).to(dtype);
        for (var r = 0; r < rows; r++)
        {
            var at = randperm(Vocab, generator: generator).narrow(0, 0, planted);
            logits[r].index_put_(arange(planted, ScalarType.Float32).mul(0.25).add(10).to(dtype), at);
        }
        Compare(logits.to(cuda), 20, ChosenIds(rows, Vocab, seed: 18).to(cuda), null, $"{dtype}");
    }

    [Fact]
    public void Ties_come_lowest_id_first_and_masked_entries_pad_with_the_lowest_ids()
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        const int vocab = 1000;
        var logits = zeros(3, vocab);
        foreach (var id in new[] { 900, 7, 500 }) logits[0, id] = tensor(5f);
        foreach (var id in new[] { 800, 3 }) logits[0, id] = tensor(4f);
        // Row 1 stays all zeros. Row 2 is −∞ but for three tokens, as a top-k masked row would be.
        logits[2] = tensor(float.NegativeInfinity);
        foreach (var (id, value) in new[] { (30, 3f), (20, 2f), (10, 1f) }) logits[2, id] = tensor(value);

        var (values, ids, chosenLogprob, argmax) = NativeKernels.TopkLogprobs(logits.to(cuda), 4);
        var v = values.cpu().data<float>().ToArray();
        Assert.Equal(new long[] { 7, 500, 900, 3, 0, 1, 2, 3, 30, 20, 10, 0 }, ids.cpu().data<long>().ToArray());
        Assert.Equal(new long[] { 7, 0, 30 }, argmax.cpu().data<long>().ToArray());
        Assert.True(v[0] == v[1] && v[1] == v[2] && v[2] > v[3], $"row 0 values {string.Join(", ", v[..4])}");
        Assert.True(v[4] == v[5] && v[5] == v[6] && v[6] == v[7], $"row 1 values {string.Join(", ", v[4..8])}");
        Assert.Equal(-Math.Log(vocab), v[4], 1e-5);
        Assert.Equal(float.NegativeInfinity, v[11]);
        var expected = new[] { 3 - Math.Log(Math.Exp(3) + Math.Exp(2) + Math.Exp(1)), 2 - Math.Log(Math.Exp(3) + Math.Exp(2) + Math.Exp(1)) };
        Assert.Equal(expected[0], v[8], 1e-6);
        Assert.Equal(expected[1], v[9], 1e-6);
        Assert.Equal(v[0], chosenLogprob[0].cpu().item<float>());
    }

    [Fact]
    public void Ties_at_the_sampled_floor_admit_elements_the_sample_missed_lowest_id_first()
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        // Each slice block samples its first two stages of 16-byte vectors (vector 16g + i and 512 + 16g + i of the
        // slice for sample group g) and starts every warp's list at a floor: the k-th largest of the 32 groups' maxima.
        // A 1 in the first vector of groups 0–21 of the first slice makes that floor 1, so the top 20 are all ties at
        // the floor, led by ids 0 and 2 of the unaligned head, which no sample reads.
        const int k = 20;
        var ones = new[] { 0, 2, 100_000 }.Concat(Enumerable.Range(0, 22).Select(group => 3 + 4 * 16 * group + 1)).ToArray();
        var buffer = zeros(Vocab + 1);
        foreach (var id in ones) buffer[id + 1] = tensor(1f);
        var logits = buffer.to(cuda)[TensorIndex.Slice(1)].view(1, Vocab);  // 4 bytes off alignment: ids 0–2 are the head

        var (values, ids, _, argmax) = NativeKernels.TopkLogprobs(logits, k);
        Assert.Equal(ones.Order().Take(k).Select(id => (long)id).ToArray(), Longs(ids));
        Assert.Equal(0L, argmax.cpu().item<long>());
        var v = Floats(values);
        Assert.True(v.All(x => x == v[0]), $"tied values differ: {string.Join(", ", v)}");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(64)]
    public void Ties_spread_over_the_row_come_lowest_id_first_whatever_the_slices(int rows)
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        // How many slices a row is cut into depends on the batch and the GPU (1 to 32 at this V); the best value at
        // every 4999th id, and a runner-up right after each, cross every slice boundary the merge can meet.
        const int k = 32;
        var best = Enumerable.Range(0, 25).Select(i => i * 4999).ToArray();
        var logits = DistinctLogits(rows, Vocab, seed: 40 + rows);
        foreach (var id in best)
        {
            logits[TensorIndex.Colon, id] = tensor(40f);
            logits[TensorIndex.Colon, id + 1] = tensor(35f);
        }

        var (values, ids, _, argmax) = NativeKernels.TopkLogprobs(logits.to(cuda), k);
        var expected = best.Concat(best.Take(k - best.Length).Select(id => id + 1)).Select(id => (long)id).ToArray();
        var got = Longs(ids);
        var v = Floats(values);
        for (var r = 0; r < rows; r++)
        {
            var row = got[(r * k)..((r + 1) * k)];
            Assert.True(expected.SequenceEqual(row), $"row {r}: ids [{string.Join(", ", row)}], expected [{string.Join(", ", expected)}]");
            Assert.True(v[(r * k)..(r * k + best.Length)].All(x => x == v[r * k]), $"row {r}: tied values differ");
        }
        Assert.All(Longs(argmax), id => Assert.Equal(0L, id));
    }

    [Fact]
    public void The_same_logits_give_the_same_bits()
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        var logits = DistinctLogits(64, Vocab, seed: 21).to(cuda);
        var first = NativeKernels.TopkLogprobs(logits, 20);
        for (var run = 0; run < 3; run++)
        {
            var again = NativeKernels.TopkLogprobs(logits, 20);
            Assert.Equal(Bits(first.Values), Bits(again.Values));
            Assert.Equal(Longs(first.Ids), Longs(again.Ids));
            Assert.Equal(Bits(first.ChosenLogprob), Bits(again.ChosenLogprob));
        }
    }

    [Fact]
    public void Greedy_rows_of_a_decode_step_through_the_kernel_report_what_the_reference_does()
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        var logits = DistinctLogits(6, Vocab, seed: 30).to(cuda);
        var greedy = new SamplingParams(Temperature: 0, TopLogprobs: 5);
        var p = new[] { greedy, greedy with { TopLogprobs = 20 }, new SamplingParams(Temperature: 0.8, Seed: 3, TopLogprobs: 2), greedy, greedy with { TopLogprobs = 0 }, greedy };
        var forced = new int?[] { null, 77, null, null, 151935, null };
        var steps = new[] { 0, 1, 2, 3, 4, 5 };

        var batch = TokenSampler.NextBatch(logits, p, steps, forced);
        for (var i = 0; i < p.Length; i++)
        {
            var alone = TokenSampler.Next(logits[i], p[i], steps[i], forced[i]);
            Assert.Equal(alone.Token, batch[i].Token);
            Assert.True(Math.Abs(alone.Logprob - batch[i].Logprob) <= 2e-5, $"row {i}: chosen logprob {batch[i].Logprob} vs reference {alone.Logprob}");
            Assert.Equal(alone.Top.Select(e => e.Token), batch[i].Top.Select(e => e.Token));
            Assert.All(alone.Top.Zip(batch[i].Top), e => Assert.True(Math.Abs(e.First.Logprob - e.Second.Logprob) <= 2e-5, $"row {i}: {e.Second} vs reference {e.First}"));
        }
    }

    [Fact]
    public void Bad_arguments_are_refused_with_their_name()
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        var logits = zeros([2, 100], device: cuda);
        Assert.Contains("k 33", Assert.Throws<NativeKernelException>(() => NativeKernels.TopkLogprobs(logits, 33)).Message);
        Assert.Contains("k 0", Assert.Throws<NativeKernelException>(() => NativeKernels.TopkLogprobs(logits, 0)).Message);
        Assert.Contains("not a floating type", Assert.Throws<NativeKernelException>(() => NativeKernels.TopkLogprobs(logits.to(ScalarType.Int32), 5)).Message);
        Assert.Throws<ArgumentException>(() => NativeKernels.TopkLogprobs(logits, 5, chosen: zeros([2], ScalarType.Int32, cuda)));
        Assert.Throws<ArgumentException>(() => NativeKernels.TopkLogprobs(logits, 5, temperature: ones([3], device: cuda)));
        Assert.Throws<ArgumentException>(() => NativeKernels.TopkLogprobs(logits.cpu(), 5));
    }

    private static void Compare(Tensor logits, int k, Tensor chosen, Tensor? temperature, string what)
    {
        var ours = NativeKernels.TopkLogprobs(logits, k, chosen, temperature);
        var reference = BatchLogprobs.Reference(logits, k, chosen, temperature);
        var rows = (int)logits.shape[0];
        var (ov, oi, oc, oa) = (Floats(ours.Values), Longs(ours.Ids), Floats(ours.ChosenLogprob), Longs(ours.Argmax));
        var (rv, ri, rc, ra) = (Floats(reference.Values), Longs(reference.Ids), Floats(reference.ChosenLogprob), Longs(reference.Argmax));
        for (var r = 0; r < rows; r++)
        {
            // L = best scaled logit − its logprob; the reference's, to size the tolerance (see remarks).
            var scaledBest = logits[r, ri[r * k]].to(ScalarType.Float32).item<float>() / (temperature is null ? 1f : temperature[r].cpu().item<float>());
            var normaliser = scaledBest - rv[r * k];
            Assert.True(ra[r] == oa[r], $"{what}: row {r} argmax {oa[r]} vs reference {ra[r]}");
            for (var j = 0; j < k; j++)
            {
                var at = r * k + j;
                Assert.True(oi[at] == ri[at], $"{what}: row {r} rank {j}: id {oi[at]} ({ov[at]}) vs reference {ri[at]} ({rv[at]})");
                Assert.True(Math.Abs(ov[at] - rv[at]) <= Tolerance(rv[at], normaliser), $"{what}: row {r} rank {j} (id {ri[at]}): {ov[at]:R} vs reference {rv[at]:R}");
            }
            Assert.True(Math.Abs(oc[r] - rc[r]) <= Tolerance(rc[r], normaliser), $"{what}: row {r} chosen logprob {oc[r]:R} vs reference {rc[r]:R}");
        }
    }

    private static double Tolerance(float value, float normaliser) => 2e-6 + Ulp(normaliser) + Ulp(value);

    private static double Ulp(float x) => MathF.BitIncrement(MathF.Abs(x)) - MathF.Abs(x);

    private static float[] Floats(Tensor t) => t.cpu().data<float>().ToArray();

    private static long[] Longs(Tensor t) => t.cpu().data<long>().ToArray();

    private static int[] Bits(Tensor t) => Floats(t).Select(BitConverter.SingleToInt32Bits).ToArray();

    /// <summary>Distinct logits in [−30, 30] (a random permutation through a logistic quantile), so top-k has no ties.</summary>
    private static Tensor DistinctLogits(int rows, int vocab, int seed)
    {
        var generator = new Generator((ulong)seed);
        var order = stack(Enumerable.Range(0, rows).Select(_ => randperm(vocab, generator: generator)).ToArray()).to(ScalarType.Float64);
        var u = (order + 0.5) / vocab;
        return (2.5 * (u / (1 - u)).log()).to(ScalarType.Float32);
    }

    /// <summary>Random token ids, every third −1 (the argmax).</summary>
    private static Tensor ChosenIds(int rows, int vocab, int seed)
    {
        var random = new Random(seed);
        return tensor(Enumerable.Range(0, rows).Select(r => r % 3 == 0 ? -1L : random.Next(vocab)).ToArray());
    }
}

using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Engines.Layers;
using MLNode.Engines.Llm;
using MLNode.Engines.Llm.Sampling;
using MLNode.Tests;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Llm;

/// <summary>
/// Generation through the KV cache and continuous batching against transformers' greedy reference
/// (fp32, logprobs within 1e-4 as in <see cref="QwenLogitsTests"/>), plus the sampler's contracts.
/// </summary>
public sealed class LlmGeneratorTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static LlmGenerator NewGenerator(string model, int slots = 4, int capacity = 128, int prefillTokens = LlmGenerator.DefaultPrefillTokens)
    {
        var lm = TinyModels.Get(model, ScalarType.Float32);
        var c = lm.Config;
        var cache = new KvCache(c.NumHiddenLayers, slots, c.NumKeyValueHeads, capacity, c.HeadDim, ScalarType.Float32, CPU);
        return new LlmGenerator(lm, cache, slots, NullLogger.Instance, prefillTokens);
    }

    private static async Task<List<GeneratedToken>> Collect(System.Threading.Channels.ChannelReader<GeneratedToken> reader)
    {
        var tokens = new List<GeneratedToken>();
        await foreach (var t in reader.ReadAllAsync(Ct)) tokens.Add(t);
        return tokens;
    }

    [Theory]
    [MemberData(nameof(QwenLogitsTests.Models), MemberType = typeof(QwenLogitsTests))]
    public async Task Batched_greedy_decoding_through_the_cache_matches_transformers(string model)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.Path("llm", model, "reference_outputs.json")));
        var greedy = doc.RootElement.GetProperty("fp32").GetProperty("greedy");
        var prompt = greedy.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var steps = greedy.GetProperty("steps").EnumerateArray().ToArray();
        await using var generator = NewGenerator(model);

        // Two other sequences of other lengths run in the same batch and must not disturb the reference one.
        var greedyParams = new SamplingParams(Temperature: 0, TopLogprobs: 5);
        var others = new[] { new[] { 7, 8, 9 }, Enumerable.Range(20, 30).ToArray() }
            .Select(p => Collect(generator.Generate(new GenerationRequest(p, greedyParams, 40, new HashSet<int>()), Ct))).ToList();
        var ours = await Collect(generator.Generate(new GenerationRequest(prompt, greedyParams, steps.Length, new HashSet<int>()), Ct));
        await Task.WhenAll(others);

        Assert.Equal(steps.Length, ours.Count);
        Assert.Equal(FinishReason.Length, ours[^1].Finish);
        for (var i = 0; i < steps.Length; i++)
        {
            Assert.Equal(steps[i].GetProperty("token").GetInt32(), ours[i].Token.Token);
            Assert.True(Math.Abs(ours[i].Token.Logprob - steps[i].GetProperty("logprob").GetDouble()) <= 1e-4, $"{model} step {i}");
            Assert.Equal(steps[i].GetProperty("top_ids").EnumerateArray().Select(e => e.GetInt32()), ours[i].Token.Top.Select(t => t.Token));
        }
    }

    [Fact]
    public async Task A_seed_gives_the_same_tokens_alone_and_in_a_batch()
    {
        await using var generator = NewGenerator("qwen3-tiny");
        var sampling = new SamplingParams(Temperature: 0.9, TopP: 0.95, TopK: 50, Seed: 1234, TopLogprobs: 3);
        var request = new GenerationRequest([5, 6, 7, 8], sampling, 20, new HashSet<int>());
        var alone = await Collect(generator.Generate(request, Ct));
        var crowd = Enumerable.Range(0, 3).Select(i => Collect(generator.Generate(request with { Prompt = [1 + i, 2, 3] }, Ct))).ToList();
        var again = await Collect(generator.Generate(request, Ct));
        await Task.WhenAll(crowd);
        Assert.Equal(alone.Select(t => t.Token.Token), again.Select(t => t.Token.Token));
        // Batch composition changes GEMM blocking, so logprobs may move in the last float32 bits only.
        Assert.All(alone.Zip(again), p => Assert.True(Math.Abs(p.First.Token.Logprob - p.Second.Token.Logprob) <= 1e-5));
        var other = await Collect(generator.Generate(request with { Sampling = sampling with { Seed = 99 } }, Ct));
        Assert.NotEqual(alone.Select(t => t.Token.Token), other.Select(t => t.Token.Token));
    }

    [Fact]
    public async Task Replay_emits_the_enforced_tokens_with_this_models_logprobs()
    {
        await using var generator = NewGenerator("qwen3-tiny");
        var sampling = new SamplingParams(Temperature: 0.7, Seed: 5, TopLogprobs: 5);
        var executed = await Collect(generator.Generate(new GenerationRequest([10, 11, 12], sampling, 12, new HashSet<int>()), Ct));
        var enforced = executed.Select(t => t.Token.Token).ToList();
        var replayed = await Collect(generator.Generate(new GenerationRequest([10, 11, 12], sampling with { Seed = 777 }, 100, new HashSet<int>(), enforced), Ct));
        Assert.Equal(enforced, replayed.Select(t => t.Token.Token));
        // Same weights, same kernels: the validator's logprobs are the executor's, to the bit.
        Assert.Equal(executed.Select(t => t.Token.Logprob), replayed.Select(t => t.Token.Logprob));
        Assert.Equal(FinishReason.Stop, replayed[^1].Finish);
    }

    [Fact]
    public async Task Processed_logprobs_mask_filtered_tokens_and_pad_like_the_fork()
    {
        await using var generator = NewGenerator("qwen3-tiny");
        var processed = await Collect(generator.Generate(new GenerationRequest([3, 4], new SamplingParams(Temperature: 1.0, TopK: 2, Seed: 1, TopLogprobs: 5), 3, new HashSet<int>()), Ct));
        foreach (var t in processed.Select(p => p.Token))
        {
            Assert.Equal(5, t.Top.Count);
            Assert.All(t.Top.Take(2), e => Assert.True(float.IsFinite(e.Logprob)));
            // Beyond top-k everything is masked: −∞, padded with the lowest ids.
            Assert.Equal([0, 1, 2], t.Top.Skip(2).Select(e => e.Token).Where(id => !t.Top.Take(2).Any(f => f.Token == id)).Take(3).Concat([0, 1, 2]).Take(3));
            Assert.All(t.Top.Skip(2), e => Assert.Equal(float.NegativeInfinity, e.Logprob));
            Assert.Equal(1.0, t.Top.Take(2).Sum(e => Math.Exp(e.Logprob)), 4);
        }
        var raw = await Collect(generator.Generate(new GenerationRequest([3, 4], new SamplingParams(Temperature: 1.0, TopK: 2, Seed: 1, TopLogprobs: 5, Mode: LogprobsMode.Raw), 3, new HashSet<int>()), Ct));
        Assert.All(raw, t => Assert.All(t.Token.Top, e => Assert.True(float.IsFinite(e.Logprob))));
    }

    [Fact]
    public async Task Cancelled_sequences_free_their_slots_and_stop_tokens_end_a_sequence()
    {
        await using var generator = NewGenerator("qwen3-tiny", slots: 2);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var long1 = generator.Generate(new GenerationRequest([1, 2], new SamplingParams(Temperature: 0), 100, new HashSet<int>()), cancel.Token);
        var long2 = generator.Generate(new GenerationRequest([1, 3], new SamplingParams(Temperature: 0), 100, new HashSet<int>()), cancel.Token);
        await long1.ReadAsync(Ct);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Collect(long1));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Collect(long2));

        // Both slots are free again: two new sequences run to completion.
        var greedy = await Collect(generator.Generate(new GenerationRequest([4, 5, 6], new SamplingParams(Temperature: 0), 8, new HashSet<int>()), Ct));
        var stopAt = greedy[3].Token.Token;
        var stopped = await Collect(generator.Generate(new GenerationRequest([4, 5, 6], new SamplingParams(Temperature: 0), 8, new HashSet<int> { stopAt }), Ct));
        Assert.Equal(FinishReason.Stop, stopped[^1].Finish);
        Assert.Equal(greedy.Take(stopped.Count).Select(t => t.Token.Token), stopped.Select(t => t.Token.Token));
        Assert.Equal(stopAt, stopped[^1].Token.Token);
    }

    [Fact]
    public async Task A_prefill_token_budget_admits_prompts_in_rounds_with_the_same_results()
    {
        // A budget of 1 token admits one prompt per round (the first always goes, however long).
        await using var unbounded = NewGenerator("qwen3-tiny");
        await using var bounded = NewGenerator("qwen3-tiny", prefillTokens: 1);
        var requests = new[] { new[] { 3, 1, 4, 1, 5 }, [9, 2], Enumerable.Range(30, 17).ToArray(), [6] }
            .Select(p => new GenerationRequest(p, new SamplingParams(Temperature: 0, TopLogprobs: 2), 10, new HashSet<int>())).ToList();
        var expected = await Task.WhenAll(requests.Select(r => Collect(unbounded.Generate(r, Ct))));
        var actual = await Task.WhenAll(requests.Select(r => Collect(bounded.Generate(r, Ct))));
        for (var i = 0; i < requests.Count; i++)
        {
            Assert.Equal(expected[i].Select(t => t.Token.Token), actual[i].Select(t => t.Token.Token));
            // Rounds change padding and batch shapes, so fp32 logprobs may move in the last bits only.
            Assert.All(expected[i].Zip(actual[i]), p => Assert.True(Math.Abs(p.First.Token.Logprob - p.Second.Token.Logprob) <= 1e-4));
        }
    }

    [Fact]
    public async Task Steps_queued_ahead_give_each_sequence_what_it_gets_alone()
    {
        // Greedy sequences step ahead of the host (each step queued from the previous one's tokens on the device); they
        // join and leave at different steps, a stop token ends one while its next step is already queued, and a sampled
        // sequence joining midway sends the batch back to one step at a time. Each gets what it gets alone.
        var greedy = new SamplingParams(Temperature: 0, TopLogprobs: 3);
        var requests = new[]
        {
            new GenerationRequest([3, 1, 4], greedy, 12, new HashSet<int>()),
            new GenerationRequest([1, 5, 9, 2, 6], greedy, 3, new HashSet<int>()),
            new GenerationRequest([5, 3], greedy, 30, new HashSet<int>()),
            new GenerationRequest([8, 9, 7, 9], new SamplingParams(Temperature: 0.8, Seed: 3, TopLogprobs: 2), 6, new HashSet<int>()),
        };
        await using var generator = NewGenerator("qwen3-tiny");
        var alone = new List<List<GeneratedToken>>();
        foreach (var r in requests) alone.Add(await Collect(generator.Generate(r, Ct)));
        var stopAt = alone[2][7].Token.Token;
        alone[2] = alone[2].Take(alone[2].FindIndex(t => t.Token.Token == stopAt) + 1).ToList();
        alone[2][^1] = alone[2][^1] with { Finish = FinishReason.Stop };
        requests[2] = requests[2] with { StopTokens = new HashSet<int> { stopAt } };

        var first = requests.Take(3).Select(r => Collect(generator.Generate(r, Ct))).ToList();
        await Task.Delay(20, Ct);
        var together = (await Task.WhenAll(first.Append(Collect(generator.Generate(requests[3], Ct))))).ToList();
        for (var i = 0; i < requests.Length; i++)
        {
            Assert.Equal(alone[i].Select(t => t.Token.Token), together[i].Select(t => t.Token.Token));
            Assert.Equal(alone[i].Select(t => t.Finish), together[i].Select(t => t.Finish));
            // Batch composition changes GEMM blocking, so float32 logprobs may move in the last bits only.
            Assert.All(alone[i].Zip(together[i]), p => Assert.True(Math.Abs(p.First.Token.Logprob - p.Second.Token.Logprob) <= 1e-5));
        }
    }

    [Fact]
    public async Task A_greedy_replay_feeds_the_enforced_tokens_not_its_own_choices()
    {
        // The enforced ids differ from this model's argmax after the first few, so a replay that fed its own choices to the
        // next step would report other logprobs. Reference: one forward over prompt + enforced ids, without the cache
        // (other kernels and summation order: float32 within 1e-4, as against transformers).
        var model = TinyModels.Get("qwen3-tiny", ScalarType.Float32);
        await using var generator = NewGenerator("qwen3-tiny");
        int[] prompt = [10, 11, 12];
        var greedy = new SamplingParams(Temperature: 0, TopLogprobs: 2);
        var own = await Collect(generator.Generate(new GenerationRequest(prompt, greedy, 8, new HashSet<int>()), Ct));
        var enforced = own.Select((t, i) => i < 2 ? t.Token.Token : (t.Token.Token + 17) % model.Config.VocabSize).ToList();
        var replayed = await Collect(generator.Generate(new GenerationRequest(prompt, greedy, 100, new HashSet<int>(), enforced), Ct));

        Assert.Equal(enforced, replayed.Select(t => t.Token.Token));
        Assert.Equal(FinishReason.Stop, replayed[^1].Finish);
        using var scope = NewDisposeScope();
        var ids = tensor(prompt.Concat(enforced).Select(id => (long)id).ToArray(), [1, prompt.Length + enforced.Count]);
        var logprobs = model.Logits(model.Hidden(model.Embed(ids)))[0].log_softmax(-1);
        for (var i = 0; i < enforced.Count; i++)
            Assert.True(Math.Abs(logprobs[prompt.Length - 1 + i, enforced[i]].item<float>() - replayed[i].Token.Logprob) <= 1e-4, $"step {i}");
    }

    [Fact]
    public async Task A_prompt_longer_than_the_context_is_refused()
    {
        await using var generator = NewGenerator("qwen3-tiny", capacity: 16);
        Assert.Throws<ArgumentException>(() => generator.Generate(new GenerationRequest(Enumerable.Range(1, 16).ToArray(), new SamplingParams(), 4, new HashSet<int>()), Ct));
        var capped = await Collect(generator.Generate(new GenerationRequest(Enumerable.Range(1, 12).ToArray(), new SamplingParams(Temperature: 0), 100, new HashSet<int>()), Ct));
        Assert.Equal(4, capped.Count);
        Assert.Equal(FinishReason.Length, capped[^1].Finish);
    }
}

using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Engines.Hosting;
using MLNode.Engines.Layers;
using MLNode.Engines.Llm;
using MLNode.Engines.Llm.Sampling;
using MLNode.Runtime.Checkpoints;
using MLNode.Runtime.Collectives;
using MLNode.Runtime.Registry;
using MLNode.Runtime.Torch;
using MLNode.Tests;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Llm;

/// <summary>
/// Tensor parallelism on the CPU: the fixtures' tiny models (dense with q/k norms, dense with qkv bias, MoE) as 2 and 4
/// ranks over the CPU communicator against the same model whole. TP = 4 also replicates their 2 key/value heads.
/// </summary>
public sealed class TensorParallelTests
{
    /// <summary>
    /// float32: a row-parallel product sums N partial dot products instead of one, and an MoE layer its experts'
    /// outputs per rank before the all-reduce, so only the rounding of those sums differs (relative ~1e-7 per
    /// operation); through 3–4 layers of these 64-wide models that stays orders of magnitude below 1e-5 on logits of
    /// magnitude ~1 (measured: at most 7.8e-7 over the three models at TP = 2 and 4). The embedding, the all-gathered
    /// LM head and the replicated norms and router are exact.
    /// </summary>
    private const double LogitTolerance = 1e-5;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string, int> ModelsAndSizes()
    {
        var data = new TheoryData<string, int>();
        foreach (var model in TinyModels.Names)
        {
            data.Add(model, 2);
            data.Add(model, 4);
        }
        return data;
    }

    private static LlmEngine.LoadedRanks LoadRanks(string model, int ranks, int slots = 4) =>
        LlmEngine.LoadRanks(HfModelConfig.FromFile(Fixtures.Path("llm", model, "config.json")), Fixtures.Path("llm", model), TorchRuntime.Initialize(null, NullLogger.Instance),
            ScalarType.Float32, ranks, new LlmEngine.KvCacheRequest(slots, 128), NullLogger.Instance, Ct);

    private static long[] PromptIds(string model)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.Path("llm", model, "reference_outputs.json")));
        return doc.RootElement.GetProperty("fp32").GetProperty("prompts")[0].GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt64()).ToArray();
    }

    [Theory]
    [MemberData(nameof(ModelsAndSizes))]
    public void Sharded_logits_at_every_position_equal_the_whole_models(string model, int ranks)
    {
        var ids = PromptIds(model);
        var whole = TinyModels.Get(model, ScalarType.Float32);
        using var scope = NewDisposeScope();
        var expected = whole.Logits(whole.Hidden(whole.Embed(tensor(ids, [1, ids.Length]))))[0];
        var loaded = LoadRanks(model, ranks);
        using var _ = loaded.Ranks;
        var sharded = loaded.Ranks.RunLast(r => r.LogitsOf(ids));
        var every = loaded.Ranks.Run(r => r.LogitsOf(ids));

        Assert.Equal(expected.shape, sharded.shape);
        var difference = (sharded - expected).abs().max().item<float>();
        Assert.True(difference <= LogitTolerance, $"{model} TP={ranks}: max |Δlogit| {difference:E2}");
        // Every rank holds the same full logits (the all-gather), to the bit.
        Assert.All(every, r => Assert.True(r.equal(every[^1]).all().item<bool>()));
        Assert.Equal(LlmEngine.ParameterCount(whole), loaded.ParameterCount);
    }

    [Theory]
    [MemberData(nameof(ModelsAndSizes))]
    public async Task Sharded_poc_artifacts_are_within_the_poc_tolerance_of_the_whole_models(string model, int ranks)
    {
        var hidden = TinyModels.Get(model, ScalarType.Float32).Config.HiddenSize;
        var reference = PocReference.Load(model, "fp32", hidden);
        var nonces = reference.Nonces.Take(8).ToArray();
        var whole = await new LlmPocProver(TinyModels.Get(model, ScalarType.Float32)).ComputeAsync(reference.Round, nonces, Ct);
        var loaded = LoadRanks(model, ranks);
        using var _ = loaded.Ranks;
        var sharded = await new LlmPocProver(loaded.Ranks).ComputeAsync(reference.Round, nonces, Ct);

        Assert.Equal(nonces, sharded.Select(a => a.Nonce));
        foreach (var (ours, theirs) in sharded.Zip(whole))
        {
            Assert.True(PocReference.L2(ours.VectorB64, theirs.VectorB64) <= PocReference.MaxL2, $"{model} TP={ranks} nonce {ours.Nonce} against TP=1");
            Assert.True(PocReference.L2(ours.VectorB64, reference.Artifacts[ours.Nonce]) <= PocReference.MaxL2, $"{model} TP={ranks} nonce {ours.Nonce} against the reference");
        }
    }

    [Theory]
    [MemberData(nameof(QwenLogitsTests.Models), MemberType = typeof(QwenLogitsTests))]
    public async Task Greedy_generation_over_two_ranks_picks_the_reference_tokens(string model)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.Path("llm", model, "reference_outputs.json")));
        var greedy = doc.RootElement.GetProperty("fp32").GetProperty("greedy");
        var prompt = greedy.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var expected = greedy.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("token").GetInt32()).ToArray();
        var loaded = LoadRanks(model, 2);
        using var _ = loaded.Ranks;
        await using var generator = new LlmGenerator(loaded.Ranks, 4, NullLogger.Instance);

        var sampling = new SamplingParams(Temperature: 0, TopLogprobs: 5);
        var other = Collect(generator.Generate(new GenerationRequest([7, 8, 9], sampling, 10, new HashSet<int>()), Ct));
        var tokens = await Collect(generator.Generate(new GenerationRequest(prompt, sampling, expected.Length, new HashSet<int>()), Ct));
        await other;

        Assert.Equal(expected, tokens.Select(t => t.Token.Token));
    }

    /// <summary>
    /// Each rank reads only its shard of every sharded weight (a half at TP = 2), whole experts of only its half of them,
    /// and the whole of only the norms and the MoE router: the WeightSource records what each tensor it handed out holds.
    /// </summary>
    [Theory]
    [MemberData(nameof(QwenLogitsTests.Models), MemberType = typeof(QwenLogitsTests))]
    public void Each_rank_reads_only_its_shard_of_the_checkpoint(string model)
    {
        var folder = Fixtures.Path("llm", model);
        var config = HfModelConfig.FromFile(Path.Combine(folder, "config.json"));
        using var checkpoint = Checkpoint.Open(folder);
        var reads = new IReadOnlyList<WeightRead>[2];
        using var ranks = RankThreads<QwenForCausalLM>.Start(CpuCommunicator.CreateGroup(2, Ct), c =>
        {
            var weights = new CheckpointWeights(checkpoint, CPU, ScalarType.Float32);
            var rank = new QwenForCausalLM(config, weights, parallel: new TensorParallel(c));
            reads[c.Rank] = weights.Reads;
            return rank;
        }, m => m.Dispose());

        Assert.Equal(checkpoint.TensorNames.Order(), reads.SelectMany(r => r.Select(x => x.Name)).Distinct().Order());
        foreach (var rank in reads)
        {
            foreach (var read in rank)
            {
                var whole = read.Name.EndsWith("norm.weight", StringComparison.Ordinal) || read.Name.Contains(".mlp.gate.", StringComparison.Ordinal)
                    || read.Name.Contains(".experts.", StringComparison.Ordinal);
                Assert.True(read.Elements == (whole ? read.WholeElements : read.WholeElements / 2), $"{model}: {read.Name} holds {read.Elements} of {read.WholeElements}");
            }
        }
        // The experts are split whole: rank 0 holds experts 0..n/2-1, rank 1 the rest, each read once.
        if (config.IsMoe)
        {
            var experts = reads.Select(r => r.Where(x => x.Name.Contains(".experts.", StringComparison.Ordinal)).Select(x => x.Name).ToHashSet()).ToArray();
            Assert.Empty(experts[0].Intersect(experts[1]));
            Assert.Equal(experts[0].Count, experts[1].Count);
            Assert.Contains("model.layers.0.mlp.experts.0.up_proj.weight", experts[0]);
            Assert.Contains($"model.layers.0.mlp.experts.{config.NumExperts - 1}.up_proj.weight", experts[1]);
        }
    }

    [Fact]
    public async Task A_fault_on_one_rank_stops_the_whole_model_with_that_ranks_error()
    {
        var ids = PromptIds("qwen3-tiny");
        var loaded = LoadRanks("qwen3-tiny", 2);
        using var _ = loaded.Ranks;
        await using var generator = new LlmGenerator(loaded.Ranks, 4, NullLogger.Instance);

        // Rank 1 fails after the embedding's all-reduce; rank 0 goes on into the first layer's and must not wait forever.
        var failure = Assert.Throws<TensorParallelException>(() => loaded.Ranks.Run(r =>
        {
            using var scope = NewDisposeScope();
            var h = r.Model.Embed(tensor(ids, [1, ids.Length]));
            if (r.Index == 1) throw new InvalidOperationException("injected fault");
            return r.Model.Logits(r.Model.Hidden(h)).MoveToOuterDisposeScope();
        }));
        Assert.Equal(1, failure.Rank);
        Assert.Contains("rank 1 of 2 failed, and the model is stopped: injected fault", failure.Message);
        Assert.Equal(failure.Message, loaded.Ranks.Failure?.Message);

        // Every later use of the model fails with the same error, generation included.
        Assert.Contains("injected fault", Assert.Throws<TensorParallelException>(() => loaded.Ranks.Run(r => r.Index)).Message);
        var error = await Assert.ThrowsAsync<TensorParallelException>(() => Collect(generator.Generate(
            new GenerationRequest([1, 2, 3], new SamplingParams(Temperature: 0), 4, new HashSet<int>()), Ct)));
        Assert.Equal(1, error.Rank);
    }

    [Fact]
    public void Inference_up_refuses_more_ranks_than_gpus_and_sharding_anything_but_an_llm()
    {
        var limits = new ModelLimits(MaxModelLen: 4096, MaxBatch: 8);
        var llm = new ModelEntry { Id = "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8", Modality = Modality.Llm, Architecture = "qwen3_moe", Dtype = "bfloat16", Limits = limits };
        var asr = llm with { Id = "openai/whisper-large-v3", Modality = Modality.Asr, Architecture = "whisper" };
        var four = new EngineArgs { TensorParallelSize = 4 };

        Assert.Null(ModelHost.TensorParallelProblem(llm, four, visibleGpus: 4));
        Assert.Null(ModelHost.TensorParallelProblem(llm, four, visibleGpus: null));
        Assert.Null(ModelHost.TensorParallelProblem(asr, new EngineArgs(), visibleGpus: 1));
        var tooFew = ModelHost.TensorParallelProblem(llm, four, visibleGpus: 1)!;
        Assert.True(tooFew.InArguments);
        Assert.Equal("--tensor-parallel-size 4 needs 4 GPUs, one per rank; this node sees 1", tooFew.Message);
        Assert.Contains("only LLMs are sharded here, and openai/whisper-large-v3 is not one (asr)", ModelHost.TensorParallelProblem(asr, four, visibleGpus: 8)!.Message);
    }

    private static async Task<List<GeneratedToken>> Collect(System.Threading.Channels.ChannelReader<GeneratedToken> reader)
    {
        var tokens = new List<GeneratedToken>();
        await foreach (var t in reader.ReadAllAsync(Ct)) tokens.Add(t);
        return tokens;
    }
}

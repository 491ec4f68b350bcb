using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Engines.Hosting;
using MLNode.Engines.Layers;
using MLNode.Engines.Llm;
using MLNode.Engines.Llm.Sampling;
using MLNode.Runtime.Checkpoints;
using MLNode.Runtime.Collectives;
using MLNode.Tests;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Gpu.Tests;

/// <summary>
/// The NCCL binding and a tensor-parallel model over it, as far as one GPU goes: a world of one rank, driven by its own
/// thread like every rank of a larger world. Skipped without a CUDA libtorch, or without an NCCL beside it.
/// </summary>
public sealed class NcclTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static IReadOnlyList<NcclCommunicator> WorldOfOne()
    {
        Gpu.Require();
        var libtorch = Environment.GetEnvironmentVariable("MLNODE_LIBTORCH");
        try
        {
            NcclLibrary.Load(libtorch);
        }
        catch (NcclUnavailableException e)
        {
            Assert.Skip(e.Message);
        }
        return NcclCommunicator.CreateGroup([0], libtorch);
    }

    [Fact]
    public void A_world_of_one_reduces_gathers_and_broadcasts_on_the_gpu()
    {
        using var ranks = RankThreads<ICommunicator>.Start(WorldOfOne(), c => c, _ => { });
        var results = ranks.Run(c =>
        {
            using var scope = NewDisposeScope();
            var cuda = new Device(DeviceType.CUDA, 0);
            var x = randn([3, 5], generator: new Generator(3)).to(ScalarType.BFloat16).to(cuda);
            var original = x.clone();
            c.AllReduceSum(x);
            var gathered = c.AllGather(x, 1);
            c.Broadcast(x, 0);
            c.Barrier();
            return x.equal(original).all().item<bool>() && gathered.equal(original).all().item<bool>();
        });
        Assert.True(results[0]);
    }

    /// <summary>
    /// The tiny Qwen3 as one NCCL rank (the sharded layer classes, the masked vocabulary lookup, the all-reduces and the
    /// all-gather on the GPU, eager decoding) against the same model built whole: the same GEMMs, and collectives of
    /// one rank that leave their input as it is, so logits within 1e-6 and the reference's greedy tokens.
    /// </summary>
    [Fact]
    public async Task A_one_rank_nccl_model_computes_what_the_whole_model_computes()
    {
        var communicators = WorldOfOne();
        var cuda = new Device(DeviceType.CUDA, 0);
        var folder = Fixtures.Path("llm", "qwen3-tiny");
        var config = HfModelConfig.FromFile(Path.Combine(folder, "config.json"));
        using var whole = LlmEngine.Load(config, folder, cuda, ScalarType.Float32, NullLogger.Instance, Ct);
        using var checkpoint = Checkpoint.Open(folder);
        using var ranks = RankThreads<LlmRank>.Start(communicators, c =>
        {
            var model = new QwenForCausalLM(config, new CheckpointWeights(checkpoint, cuda, ScalarType.Float32), parallel: new TensorParallel(c));
            model.eval();
            return new LlmRank(model, new KvCache(config.NumHiddenLayers, 4, model.KeyValueHeads, 256, config.HeadDim, ScalarType.Float32, cuda), NullLogger.Instance);
        }, r =>
        {
            r.Dispose();
            r.Model.Dispose();
        });

        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "reference_outputs.json")));
        var greedy = doc.RootElement.GetProperty("fp32").GetProperty("greedy");
        var prompt = greedy.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        using (NewDisposeScope())
        {
            var expected = whole.Logits(whole.Hidden(whole.Embed(tensor(prompt, [1, prompt.Length], device: cuda))))[0];
            var sharded = ranks.RunLast(r => r.LogitsOf(prompt));
            var difference = (sharded - expected).abs().max().item<float>();
            Assert.True(difference <= 1e-6, $"max |Δlogit| {difference:E2}");
        }

        await using var generator = new LlmGenerator(ranks, 4, NullLogger.Instance);
        var steps = greedy.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("token").GetInt32()).ToArray();
        var tokens = new List<int>();
        var request = new GenerationRequest([.. prompt.Select(t => (int)t)], new SamplingParams(Temperature: 0), steps.Length, new HashSet<int>());
        await foreach (var t in generator.Generate(request, Ct).ReadAllAsync(Ct)) tokens.Add(t.Token.Token);
        Assert.Equal(steps, tokens);

        var reference = PocReference.Load("qwen3-tiny", "fp32", config.HiddenSize);
        var nonces = reference.Nonces.Take(8).ToArray();
        var ours = await new LlmPocProver(ranks).ComputeAsync(reference.Round, nonces, Ct);
        var theirs = await new LlmPocProver(whole).ComputeAsync(reference.Round, nonces, Ct);
        Assert.All(ours.Zip(theirs), p => Assert.True(PocReference.L2(p.First.VectorB64, p.Second.VectorB64) <= PocReference.MaxL2, $"nonce {p.First.Nonce}"));
    }
}

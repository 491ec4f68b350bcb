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
/// The NCCL binding and tensor-parallel models over it: a world of one rank on any GPU, of two where two GPUs are visible
/// (skipped otherwise), each rank driven by its own thread on its own GPU. Skipped without a CUDA libtorch or an NCCL
/// beside it.
/// </summary>
public sealed class NcclTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static IReadOnlyList<NcclCommunicator> World(int size)
    {
        Gpu.Require();
        if (cuda.device_count() < size) Assert.Skip($"a world of {size} needs {size} GPUs; {cuda.device_count()} visible");
        var libtorch = Environment.GetEnvironmentVariable("MLNODE_LIBTORCH");
        try
        {
            NcclLibrary.Load(libtorch);
        }
        catch (NcclUnavailableException e)
        {
            Assert.Skip(e.Message);
        }
        return NcclCommunicator.CreateGroup([.. Enumerable.Range(0, size)], libtorch);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Collectives_reduce_gather_and_broadcast_across_gpus(int size)
    {
        using var ranks = RankThreads<ICommunicator>.Start(World(size), c => c, _ => { });
        var results = ranks.Run(c =>
        {
            using var scope = NewDisposeScope();
            var device = new Device(DeviceType.CUDA, c.Rank);
            // Small integers: every sum and copy is exact, so each rank must hold exactly these values.
            var x = full([3, 5], c.Rank + 1, ScalarType.Float32, device);
            c.AllReduceSum(x);
            var gathered = c.AllGather(full([3, 2], c.Rank + 1, ScalarType.Float32, device), 1);
            var broadcast = full([4], c.Rank + 7, ScalarType.Float32, device);
            c.Broadcast(broadcast, 0);
            c.Barrier();
            var expectedGather = cat([.. Enumerable.Range(0, size).Select(r => full([3, 2], r + 1, ScalarType.Float32, device))], 1);
            return x.eq(size * (size + 1) / 2).all().item<bool>() && gathered.equal(expectedGather).all().item<bool>()
                && broadcast.eq(7).all().item<bool>();
        });
        Assert.All(results, Assert.True);
    }

    /// <summary>
    /// The tiny models as NCCL ranks (the sharded layer classes, the masked vocabulary lookup, the all-reduces and the
    /// all-gather on the GPUs, eager decoding) against the same model built whole on GPU 0: logits within 1e-5 (a world
    /// of two sums the row-parallel halves in another order than one GEMM; the CPU tests measure ≤ 7.8e-7), the
    /// reference's greedy tokens and PoC artifacts within the PoC tolerance.
    /// </summary>
    [Theory]
    [InlineData("qwen3-tiny", 1)]
    [InlineData("qwen3-tiny", 2)]
    [InlineData("qwen3-moe-tiny", 2)]
    public async Task A_tensor_parallel_nccl_model_computes_what_the_whole_model_computes(string name, int size)
    {
        var world = World(size);
        var cuda = new Device(DeviceType.CUDA, 0);
        var folder = Fixtures.Path("llm", name);
        var config = HfModelConfig.FromFile(Path.Combine(folder, "config.json"));
        using var whole = LlmEngine.Load(config, folder, cuda, ScalarType.Float32, NullLogger.Instance, Ct);
        using var checkpoint = Checkpoint.Open(folder);
        using var ranks = Ranks(world, checkpoint, config);

        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "reference_outputs.json")));
        var greedy = doc.RootElement.GetProperty("fp32").GetProperty("greedy");
        var prompt = greedy.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        using (NewDisposeScope())
        {
            var expected = whole.Logits(whole.Hidden(whole.Embed(tensor(prompt, [1, prompt.Length], device: cuda))))[0];
            var sharded = ranks.RunLast(r => r.LogitsOf(prompt)).to(cuda);
            var difference = (sharded - expected).abs().max().item<float>();
            Assert.True(difference <= 1e-5, $"max |Δlogit| {difference:E2}");
        }

        await using var generator = new LlmGenerator(ranks, 4, NullLogger.Instance);
        var steps = greedy.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("token").GetInt32()).ToArray();
        var tokens = new List<int>();
        var request = new GenerationRequest([.. prompt.Select(t => (int)t)], new SamplingParams(Temperature: 0), steps.Length, new HashSet<int>());
        await foreach (var t in generator.Generate(request, Ct).ReadAllAsync(Ct)) tokens.Add(t.Token.Token);
        Assert.Equal(steps, tokens);

        var reference = PocReference.Load(name, "fp32", config.HiddenSize);
        var nonces = reference.Nonces.Take(8).ToArray();
        var ours = await new LlmPocProver(ranks).ComputeAsync(reference.Round, nonces, Ct);
        var theirs = await new LlmPocProver(whole).ComputeAsync(reference.Round, nonces, Ct);
        Assert.All(ours.Zip(theirs), p => Assert.True(PocReference.L2(p.First.VectorB64, p.Second.VectorB64) <= PocReference.MaxL2, $"nonce {p.First.Nonce}"));
    }

    /// <summary>
    /// Rank 1 fails after the embedding's all-reduce while rank 0 goes on into the first layer's: NCCL's abort must
    /// release rank 0's collective, which waits on the device for a peer that never comes, and the model stops with
    /// rank 1's error instead of hanging.
    /// </summary>
    [Fact(Timeout = 120_000)]
    public async Task A_fault_on_one_nccl_rank_releases_the_other_and_stops_the_model()
    {
        var world = World(2);
        var folder = Fixtures.Path("llm", "qwen3-tiny");
        var config = HfModelConfig.FromFile(Path.Combine(folder, "config.json"));
        using var checkpoint = Checkpoint.Open(folder);
        using var ranks = Ranks(world, checkpoint, config);
        long[] ids = [1, 2, 3, 4];

        var failure = await Assert.ThrowsAsync<TensorParallelException>(() => Task.Run(() => ranks.Run(r =>
        {
            using var scope = NewDisposeScope();
            var h = r.Model.Embed(tensor(ids, [1, ids.Length], device: r.Device));
            if (r.Index == 1) throw new InvalidOperationException("injected fault");
            return r.Model.Logits(r.Model.Hidden(h)).sum().item<float>(); // waits on the device for rank 1
        }), TestContext.Current.CancellationToken));
        Assert.Equal(1, failure.Rank);
        Assert.Contains("injected fault", failure.Message);
        Assert.Contains("injected fault", Assert.Throws<TensorParallelException>(() => ranks.Run(r => r.Index)).Message);
    }

    /// <summary>The tiny model's ranks over <paramref name="world"/>, rank r on GPU r, each with a small KV cache.</summary>
    private static RankThreads<LlmRank> Ranks(IReadOnlyList<NcclCommunicator> world, Checkpoint checkpoint, HfModelConfig config) =>
        RankThreads<LlmRank>.Start(world, c =>
        {
            var device = new Device(DeviceType.CUDA, c.Rank);
            var model = new QwenForCausalLM(config, new CheckpointWeights(checkpoint, device, ScalarType.Float32), parallel: new TensorParallel(c));
            model.eval();
            return new LlmRank(model, new KvCache(config.NumHiddenLayers, 4, model.KeyValueHeads, 256, config.HeadDim, ScalarType.Float32, device), NullLogger.Instance);
        }, r =>
        {
            r.Dispose();
            r.Model.Dispose();
        });
}

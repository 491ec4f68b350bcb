using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Engines.Dit;
using MLNode.Engines.Dit.Poc;
using MLNode.Engines.Layers;
using MLNode.Protocol.Diffusion;
using MLNode.Protocol.Poc;
using MLNode.Runtime.Checkpoints;
using MLNode.Tests;
using static MLNode.Engines.Tests.Dit.WanTiny;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Dit;

/// <summary>
/// Wan2.2 PoC (docs/wan-poc.md) on wan-tiny's two experts (width 24, 2 blocks): determinism, batching, an unbatched
/// C# reference of one nonce, honest float32 against bfloat16 under the chain's statistical test, and impostors. The
/// round is the PoC v2 test round (TEST_BLOCK / test_pub_keys, k 12) with seq_len 48: 3 latent frames of 8×8 cells
/// (4×4 tokens each), the latent of the sampling fixture, and 16 context rows as its padded prompt.
/// </summary>
public sealed class WanPocTests
{
    // Batch composition changes only the row count the same float32 kernels run over; CPU GEMMs may block rows
    // differently and move the last bit of a sum (~1e-7 relative, see WanTransformerTests). Through the artifact's
    // normalisations that can flip the float16 rounding of a component by one ulp (2^-11 ≈ 4.9e-4 at 0.5), so a few ulps
    // bound the L2 distance: 2e-3, a hundredth of the chain's dist_threshold.
    private const double BatchTolerance = 2e-3;

    // The reference reflects on the host with Householder.Reflect and sums the dot product in another order than
    // libtorch's matmul: float32 rounding noise of the same size as batching, bounded the same way.
    private const double ReferenceTolerance = 2e-3;

    // Honest bfloat16 projections (8 significant bits) against float32 move the tiny model's artifacts by a few 1e-3
    // (measured: mean 0.0026, max 0.0049 over 200 nonces), under both tests below. The chain's test for Qwen3-235B
    // (dist 0.2, p_mismatch 0.1, p-value 0.05) and the reference node's defaults (dist 0.02, p_mismatch 0.001, 0.01).
    private static readonly PocStatTest ChainTest = new(DistThreshold: 0.2, PMismatch: 0.1, FraudThreshold: 0.05);
    private static readonly PocStatTest NodeDefaultTest = new();

    private static readonly PocRound Round = new("TEST_BLOCK", "test_pub_keys", SeqLen: 48, HiddenSize: 24);
    private static readonly WanPocGeometry Geometry = new(LatentHeight: 8, LatentWidth: 8, TextLength: 16);
    private static readonly long[] Nonces = [.. Enumerable.Range(0, 200).Select(n => (long)n)];
    private const int BatchSize = 32;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static WanPocProver Prover(WanTransformer3DModel highNoise, WanTransformer3DModel lowNoise) =>
        new(highNoise, lowNoise, WanPocSchedule.T2VA14B, Geometry, NullLogger.Instance);

    private static WanPocProver Prover(Numerics numerics) => Prover(Expert(HighNoiseExpert, numerics), Expert(LowNoiseExpert, numerics));

    /// <summary>The artifacts of <paramref name="nonces"/>, <paramref name="batchSize"/> nonces per call, by nonce.</summary>
    private static async Task<Dictionary<long, string>> Prove(WanPocProver prover, IReadOnlyList<long> nonces, int batchSize = BatchSize)
    {
        var artifacts = new Dictionary<long, string>();
        foreach (var batch in nonces.Chunk(batchSize))
            foreach (var artifact in await prover.ComputeAsync(Round, batch, Ct))
                artifacts.Add(artifact.Nonce, artifact.VectorB64);
        return artifacts;
    }

    [Fact]
    public async Task The_same_round_and_nonce_give_the_same_artifact_bits()
    {
        var nonces = Nonces[..24];
        var first = await Prove(Prover(Numerics.Float32), nonces);
        var second = await Prove(Prover(Numerics.Float32), nonces);

        Assert.Equal(nonces, first.Keys.Order());
        Assert.Equal(first, second);
    }

    [Fact]
    public async Task Batch_composition_moves_no_artifact_beyond_float32_noise()
    {
        var nonces = Nonces[..24];
        var inOneBatch = await Prove(Prover(Numerics.Float32), nonces, batchSize: nonces.Length);
        var oneByOne = await Prove(Prover(Numerics.Float32), nonces, batchSize: 1);
        var reversed = await Prove(Prover(Numerics.Float32), [.. nonces.Reverse()], batchSize: 7);

        var alone = nonces.Select(n => PocReference.L2(inOneBatch[n], oneByOne[n])).ToArray();
        var shuffled = nonces.Select(n => PocReference.L2(inOneBatch[n], reversed[n])).ToArray();
        TestContext.Current.TestOutputHelper?.WriteLine($"L2 to one batch: alone max {alone.Max():G3}, reversed batches of 7 max {shuffled.Max():G3}");
        Assert.All(alone, d => Assert.True(d <= BatchTolerance, $"a nonce alone moved by {d:G3}"));
        Assert.All(shuffled, d => Assert.True(d <= BatchTolerance, $"a nonce in reversed batches of 7 moved by {d:G3}"));
    }

    [Fact]
    public async Task The_batched_prover_equals_the_unbatched_reference()
    {
        var nonces = Nonces[..24];
        var experts = new[] { Expert(HighNoiseExpert, Numerics.Float32), Expert(LowNoiseExpert, Numerics.Float32) };
        var batched = await Prove(Prover(experts[0], experts[1]), nonces, batchSize: nonces.Length);

        // Both experts must be exercised for the comparison to cover the grouping.
        Assert.Contains(nonces, n => Route(n).Expert == WanRouting.HighNoiseExpert);
        Assert.Contains(nonces, n => Route(n).Expert == WanRouting.LowNoiseExpert);
        var distances = nonces.Select(n => PocReference.L2(batched[n], ReferenceArtifact(n, experts))).ToArray();
        TestContext.Current.TestOutputHelper?.WriteLine($"L2 to the reference: max {distances.Max():G3}, {distances.Count(d => d == 0)} of {nonces.Length} equal bits");
        Assert.All(distances, d => Assert.True(d <= ReferenceTolerance, $"L2 {d:G3} from the reference"));
    }

    [Fact]
    public async Task Honest_float32_and_bfloat16_artifacts_pass_the_statistical_test()
    {
        var validator = await Prove(Prover(Numerics.Float32), Nonces);
        var prover = await Prove(Prover(Numerics.BFloat16), Nonces);

        var distances = Nonces.Select(n => PocReference.L2(validator[n], prover[n])).ToArray();
        TestContext.Current.TestOutputHelper?.WriteLine($"float32 vs bfloat16 L2: mean {distances.Average():F4}, max {distances.Max():F4}");
        foreach (var test in (PocStatTest[])[ChainTest, NodeDefaultTest])
        {
            var result = Validate(validator, prover, test);
            Assert.True(result.NMismatch <= 0.02 * Nonces.Length, $"{result.NMismatch} of {Nonces.Length} beyond {test.DistThreshold}");
            Assert.False(result.FraudDetected, $"dist {test.DistThreshold}: p-value {result.PValue:G3} with {result.NMismatch} mismatches");
        }
    }

    /// <summary>
    /// Impostors against an honest float32 validator. Another model, or half of one, is caught by the chain's test;
    /// weights perturbed by 20 % move the artifacts by about 0.19 (median) and are caught by it too; weights
    /// perturbed by 5 % (median 0.045) pass the chain's 0.2 and are caught only by the node's default 0.02, as PoC v2
    /// cannot tell small weight changes (quantisations) apart at the chain's threshold either.
    /// </summary>
    public static TheoryData<string, bool> Impostors => new()
    {
        { "experts swapped", true },
        { "high-noise expert only", true },
        { "weights perturbed 20 %", true },
        { "weights perturbed 5 %", false },
    };

    [Theory]
    [MemberData(nameof(Impostors))]
    public async Task An_impostor_fails_the_statistical_test(string impostor, bool chainTest)
    {
        var (high, low) = (Expert(HighNoiseExpert, Numerics.Float32), Expert(LowNoiseExpert, Numerics.Float32));
        var validator = await Prove(Prover(high, low), Nonces);
        var cheat = impostor switch
        {
            "experts swapped" => Prover(low, high),
            "high-noise expert only" => Prover(high, high),
            "weights perturbed 20 %" => Prover(Perturbed(HighNoiseExpert, 0.2), Perturbed(LowNoiseExpert, 0.2)),
            _ => Prover(Perturbed(HighNoiseExpert, 0.05), Perturbed(LowNoiseExpert, 0.05)),
        };
        var received = await Prove(cheat, Nonces);

        var result = Validate(validator, received, chainTest ? ChainTest : NodeDefaultTest);
        TestContext.Current.TestOutputHelper?.WriteLine($"{impostor}: {result.NMismatch} of {result.NTotal} mismatches, p-value {result.PValue:G3}");
        Assert.True(result.FraudDetected, $"{impostor}: {result.NMismatch} mismatches, p-value {result.PValue:G3}");
    }

    [Fact]
    public async Task A_nonce_whose_hidden_state_is_not_finite_gives_no_artifact()
    {
        var high = Expert(HighNoiseExpert, Numerics.Float32);
        var broken = Load(LowNoiseExpert, (name, weight) => name == "blocks.1.ffn.net.2.bias" ? full_like(weight, float.NaN) : weight);
        var nonces = Nonces[..24];

        var honest = await Prove(Prover(high, Expert(LowNoiseExpert, Numerics.Float32)), nonces, nonces.Length);
        var artifacts = await Prove(Prover(high, broken), nonces, nonces.Length);

        var highNoiseNonces = nonces.Where(n => Route(n).Expert == WanRouting.HighNoiseExpert).ToArray();
        Assert.Equal(highNoiseNonces, artifacts.Keys.Order());
        Assert.All(highNoiseNonces, n => Assert.Equal(honest[n], artifacts[n]));
    }

    /// <summary>
    /// docs/wan-poc.md §6: wan-tiny's float32 artifacts of the test round, as this prover and the unbatched reference
    /// compute them on the CPU (bit for bit). Pinned so that the GPU path and other implementations have a target; they
    /// may differ by float32 noise, hence the reference tolerance.
    /// </summary>
    [Theory]
    [InlineData(0L, "RTcTqmkwlCdLtKepeq8ZJBGsQTq1mzG0")]
    [InlineData(1L, "YqyUtHa2erRDMds2G6gVts42MqP9Mrq0")]
    [InlineData(7L, "N7OYttQz7Dagq5Ent7BAs2w00TSLNxm0")]
    [InlineData(9L, "qTBUrbmygzK5M3S4zDYxqRw0VTC+N0Ew")]
    [InlineData(11L, "vjTUMEi0IzXOLPWw+y+8IrE2Z7gCt6gd")]
    public async Task The_documented_test_vectors_hold(long nonce, string artifact)
    {
        var ours = await Prover(Numerics.Float32).ComputeAsync(Round, [nonce], Ct);

        var distance = PocReference.L2(Assert.Single(ours).VectorB64, artifact);
        Assert.True(distance <= ReferenceTolerance, $"nonce {nonce}: L2 {distance:G3} from the documented artifact");
    }

    [Fact]
    public async Task A_seq_len_that_is_not_whole_latent_frames_is_refused()
    {
        var round = new PocRound(Round.BlockHash, Round.PublicKey, SeqLen: 40, HiddenSize: Round.HiddenSize);
        var error = await Assert.ThrowsAsync<ArgumentException>(() => Prover(Numerics.Float32).ComputeAsync(round, [0], Ct));
        Assert.Contains("16 tokens of a latent frame", error.Message);
    }

    private static PocValidationResult Validate(Dictionary<long, string> validator, Dictionary<long, string> received, PocStatTest test) =>
        ArtifactValidator.Validate(Nonces, validator.Select(a => new PocArtifact(a.Key, a.Value)), received, test);

    private static WanRoute Route(long nonce) =>
        WanRouting.Route(WanRouting.Seed(Round.BlockHash, Round.PublicKey, nonce), WanPocSchedule.T2VA14B);

    /// <summary>
    /// One nonce as docs/wan-poc.md states it, unbatched and from the scalar references: the route from
    /// <see cref="WanRouting"/>, the latent from <see cref="PhiloxNoise"/>, the context from <see cref="PocInputs"/>, each
    /// block's output reflected token by token with <see cref="Householder.Reflect"/>, the last token encoded by
    /// <see cref="ArtifactEncoder"/>.
    /// </summary>
    private static string ReferenceArtifact(long nonce, WanTransformer3DModel[] experts)
    {
        using var scope = NewDisposeScope();
        var route = Route(nonce);
        var model = experts[route.Expert];
        var (width, blocks) = (model.Config.InnerDim, model.Config.NumLayers);
        long[] latentShape = [1, model.Config.InChannels, 3, Geometry.LatentHeight, Geometry.LatentWidth];
        var latent = tensor(PhiloxNoise.Generate(WanPocSeeds.Latent(Round.BlockHash, Round.PublicKey, nonce), (int)latentShape.Aggregate((a, b) => a * b)), latentShape);
        var contextRound = new PocRound(Round.BlockHash, Round.PublicKey, Geometry.TextLength, model.Config.TextDim, KDim: 1);
        var context = new float[contextRound.InputLength];
        PocInputs.Fill(contextRound, nonce, context);
        var vectors = Enumerable.Range(0, blocks).Select(i => Householder.LayerVector(Round.BlockHash, i, width)).ToArray();

        var hidden = model.Hidden(latent, tensor(new long[] { route.Timestep }), tensor(context, [1, Geometry.TextLength, model.Config.TextDim]),
            (block, x) =>
            {
                var values = x.data<float>().ToArray();
                for (var token = 0; token < values.Length / width; token++)
                    Householder.Reflect(values.AsSpan(token * width, width), vectors[block]);
                return tensor(values, x.shape);
            });
        var last = hidden[0, -1].data<float>().ToArray();
        return ArtifactEncoder.Encode(Round, nonce, last);
    }

    /// <summary>
    /// An expert whose every weight w is replaced by w·(1 + scale·ε), ε seeded standard normal per tensor: a model of the
    /// same shape and nearly the same function, not the one the network serves.
    /// </summary>
    private static WanTransformer3DModel Perturbed(string expert, double scale) => Load(expert, (name, weight) =>
    {
        var noise = PocRandom.Normal(PocSeeds.Seed32(name), checked((int)weight.numel()));
        return weight * (1 + scale * tensor(noise, weight.shape));
    });

    /// <summary>wan-tiny's <paramref name="expert"/> in float32 with every tensor passed through <paramref name="edit"/>.</summary>
    private static WanTransformer3DModel Load(string expert, Func<string, Tensor, Tensor> edit)
    {
        var folder = Fixtures.Path("wan", "wan-tiny", expert);
        using var checkpoint = Checkpoint.Open(folder, WanTransformer3DModel.CheckpointFileStem);
        var weights = new EditedWeights(new CheckpointWeights(checkpoint, CPU, ScalarType.Float32), edit);
        var model = new WanTransformer3DModel(WanTransformerConfig.FromFile(Path.Combine(folder, "config.json")), weights, weights);
        model.eval();
        return model;
    }

    private sealed class EditedWeights(WeightSource checkpoint, Func<string, Tensor, Tensor> edit) : WeightSource(checkpoint.Device, checkpoint.DType)
    {
        protected override Tensor Load(string name, long[] shape)
        {
            using var scope = NewDisposeScope();
            using var weight = checkpoint.Parameter(name, shape);
            return edit(name, weight.detach().clone()).MoveToOuterDisposeScope();
        }
    }
}

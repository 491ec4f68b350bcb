using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Engines.Layers;
using MLNode.Engines.Llm;
using MLNode.Engines.Llm.Sampling;
using MLNode.Runtime.Checkpoints;
using MLNode.Tests;
using static TorchSharp.torch;

namespace MLNode.Gpu.Tests;

/// <summary>
/// The generator's decode steps on CUDA replay CUDA graphs (batch padded to a power of two, key span bucketed): the
/// tiny Qwen3's greedy steps, next to two other sequences (three rows, padded to four), must still be transformers'.
/// </summary>
public class LlmGraphDecodeTests
{
    // float32 on the GPU: cuBLAS and the fused attention sum in other orders than transformers' CPU run.
    private const double LogprobTolerance = 1e-3;

    [Theory]
    [InlineData("qwen3-tiny")]
    [InlineData("qwen2-tiny")]
    [InlineData("qwen3-moe-tiny")] // decodes eagerly (routing shapes are data-dependent), through the same decode kernels
    public async Task Greedy_decoding_with_graphs_matches_transformers(string name)
    {
        var cuda = Gpu.Require();
        var ct = TestContext.Current.CancellationToken;
        var folder = Fixtures.Path("llm", name);
        using var model = LlmEngine.Load(HfModelConfig.FromFile(Path.Combine(folder, "config.json")), folder, cuda, ScalarType.Float32, NullLogger.Instance, ct);
        var c = model.Config;
        var cache = new KvCache(c.NumHiddenLayers, 4, c.NumKeyValueHeads, 512, c.HeadDim, ScalarType.Float32, cuda);
        await using var generator = new LlmGenerator(model, cache, 4, NullLogger.Instance);

        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "reference_outputs.json")));
        var greedy = doc.RootElement.GetProperty("fp32").GetProperty("greedy");
        var prompt = greedy.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var steps = greedy.GetProperty("steps").EnumerateArray().ToArray();
        var sampling = new SamplingParams(Temperature: 0, TopLogprobs: 5);
        var others = new[] { new[] { 7, 8, 9 }, Enumerable.Range(20, 30).ToArray() }
            .Select(p => Collect(generator.Generate(new GenerationRequest(p, sampling, 40, new HashSet<int>()), ct), ct)).ToList();
        var ours = await Collect(generator.Generate(new GenerationRequest(prompt, sampling, steps.Length, new HashSet<int>()), ct), ct);
        await Task.WhenAll(others);

        Assert.Equal(steps.Length, ours.Count);
        for (var i = 0; i < steps.Length; i++)
        {
            Assert.Equal(steps[i].GetProperty("token").GetInt32(), ours[i].Token.Token);
            Assert.True(Math.Abs(ours[i].Token.Logprob - steps[i].GetProperty("logprob").GetDouble()) <= LogprobTolerance, $"{name} step {i}");
        }
    }

    private static async Task<List<GeneratedToken>> Collect(System.Threading.Channels.ChannelReader<GeneratedToken> reader, CancellationToken ct)
    {
        var tokens = new List<GeneratedToken>();
        await foreach (var t in reader.ReadAllAsync(ct)) tokens.Add(t);
        return tokens;
    }
}

using MLNode.Engines.Layers;
using MLNode.Engines.Llm;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Llm;

/// <summary>
/// Prompts of different lengths prefilled together, right-padded in one forward, against each prompt
/// prefilled alone: same next-token logprobs, same cache contents, untouched cache rows past each prompt,
/// and the same greedy continuation through the cache.
/// </summary>
public sealed class BatchedPrefillTests
{
    // Padding changes no real token's inputs, but batch shapes change GEMM blocking, so fp32 values may move
    // in the last bits (~1e-6 on these 64-wide models); 1e-4 is the fixtures' tolerance for such differences.
    private const double Tolerance = 1e-4;

    private static readonly int[] Lengths = [5, 23, 1, 12];
    private const int Capacity = 40;

    [Theory]
    [MemberData(nameof(QwenLogitsTests.Models), MemberType = typeof(QwenLogitsTests))]
    public void Prefilling_prompts_together_matches_prefilling_each_alone(string model)
    {
        using var scope = NewDisposeScope();
        var lm = TinyModels.Get(model, ScalarType.Float32);
        var prompts = Lengths.Select((n, b) => Enumerable.Range(0, n).Select(p => (long)(1 + (p * 37 + b * 11) % (lm.Config.VocabSize - 1))).ToArray()).ToArray();
        using var alone = NewCache(lm);
        using var together = NewCache(lm);
        // Together, rows go to slots in the opposite order, so a mix-up of rows and slots cannot pass.
        int[] aloneSlots = [0, 1, 2, 3], togetherSlots = [3, 2, 1, 0];

        var aloneLogits = cat(prompts.Select((p, b) =>
            lm.Prefill(tensor(p, [1, p.Length]), new PrefillStep(alone, [aloneSlots[b]], [p.Length], CPU))).ToArray()).log_softmax(-1);
        var width = Lengths.Max();
        var padded = zeros([prompts.Length, width], ScalarType.Int64);
        for (var b = 0; b < prompts.Length; b++) padded[b].narrow(0, 0, Lengths[b]).copy_(tensor(prompts[b]));
        var togetherLogits = lm.Prefill(padded, new PrefillStep(together, togetherSlots, Lengths, CPU)).log_softmax(-1);

        Assert.Equal(aloneLogits.argmax(-1).data<long>().ToArray(), togetherLogits.argmax(-1).data<long>().ToArray());
        AssertClose(aloneLogits, togetherLogits, $"{model} first-token logprobs");
        for (var layer = 0; layer < lm.LayerCount; layer++)
            for (var b = 0; b < prompts.Length; b++)
                foreach (var (a, t, kind) in new[] { (alone.Keys(layer), together.Keys(layer), "keys"), (alone.Values(layer), together.Values(layer), "values") })
                {
                    AssertClose(a[aloneSlots[b]].narrow(1, 0, Lengths[b]), t[togetherSlots[b]].narrow(1, 0, Lengths[b]), $"{model} layer {layer} row {b} {kind}");
                    // Padding is never stored: past its prompt a slot still holds the zeros it was allocated with.
                    Assert.Equal(0.0, t[togetherSlots[b]].narrow(1, Lengths[b], Capacity - Lengths[b]).abs().max().item<float>());
                }

        // Greedy decoding from both caches continues identically.
        var aloneNext = aloneLogits.argmax(-1);
        var togetherNext = togetherLogits.argmax(-1);
        for (var i = 0; i < 6; i++)
        {
            var positions = tensor(Lengths.Select(n => (long)(n + i)).ToArray());
            var span = Lengths.Max() + i + 1;
            var a = lm.Decode(aloneNext, new DecodeStep(alone, tensor(aloneSlots.Select(s => (long)s).ToArray()), positions, span)).log_softmax(-1);
            var t = lm.Decode(togetherNext, new DecodeStep(together, tensor(togetherSlots.Select(s => (long)s).ToArray()), positions, span)).log_softmax(-1);
            (aloneNext, togetherNext) = (a.argmax(-1), t.argmax(-1));
            Assert.Equal(aloneNext.data<long>().ToArray(), togetherNext.data<long>().ToArray());
            AssertClose(a, t, $"{model} decode step {i}");
        }
    }

    private static KvCache NewCache(QwenForCausalLM lm) =>
        new(lm.Config.NumHiddenLayers, Lengths.Length, lm.Config.NumKeyValueHeads, Capacity, lm.Config.HeadDim, ScalarType.Float32, CPU);

    private static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        var diff = (expected - actual).abs();
        var worst = diff.max().item<float>();
        Assert.True(worst <= Tolerance, $"{what}: max |diff| {worst} at flat index {diff.flatten().argmax().item<long>()}");
    }
}

using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

using MLNode.Tests;

namespace MLNode.Engines.Tests.Llm;

/// <summary>
/// The Qwen forward against transformers' outputs for the same checkpoints (reference_outputs.json):
/// top-5 log-softmax at every position of three prompts, the first logits, and a 24-step greedy run.
/// </summary>
public sealed class QwenLogitsTests
{
    // fp32: both sides compute in float32 with different summation orders; 1e-4 absolute on log-probs
    // leaves a wide margin over the ~1e-6 such differences produce on these 64-wide models.
    private const double Fp32Tolerance = 1e-4;

    public static TheoryData<string> Models => new(TinyModels.Names);

    private static JsonElement Reference(string model, string dtype)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.Path("llm", model, "reference_outputs.json")));
        return doc.RootElement.GetProperty(dtype).Clone();
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Fp32_top5_logprobs_match_transformers_at_every_position(string model)
    {
        foreach (var (pos, ours, expectedIds, expectedLp) in Positions(model, "fp32", ScalarType.Float32))
        {
            for (var j = 0; j < expectedIds.Length; j++)
                Assert.True(Math.Abs(ours[expectedIds[j]] - expectedLp[j]) <= Fp32Tolerance,
                    $"{model} pos {pos} token {expectedIds[j]}: {ours[expectedIds[j]]} vs {expectedLp[j]}");
            // The ranking itself must agree (random weights produce no ties).
            Assert.Equal(expectedIds, Enumerable.Range(0, ours.Length).OrderByDescending(t => ours[t]).Take(expectedIds.Length));
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Fp32_greedy_generation_picks_the_same_tokens(string model)
    {
        var greedy = Reference(model, "fp32").GetProperty("greedy");
        var sequence = greedy.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt64()).ToList();
        foreach (var step in greedy.GetProperty("steps").EnumerateArray())
        {
            var logprobs = LastLogProbs(model, ScalarType.Float32, [.. sequence]);
            var token = Enumerable.Range(0, logprobs.Length).MaxBy(t => logprobs[t]);
            Assert.Equal(step.GetProperty("token").GetInt32(), token);
            Assert.True(Math.Abs(logprobs[token] - step.GetProperty("logprob").GetDouble()) <= Fp32Tolerance,
                $"{model} step {sequence.Count}: {logprobs[token]} vs {step.GetProperty("logprob").GetDouble()}");
            sequence.Add(token);
        }
    }

    /// <summary>
    /// bf16 on this CPU against bf16 on the reference's H100: every activation is rounded to 8 mantissa
    /// bits (relative step 2^-8) in a different order, so log-probs differ by a few hundredths on
    /// average; a token whose two best candidates are closer than that may swap, and in the MoE model a
    /// router score that ties within rounding can pick another expert for one token. The bounds: mean
    /// |Δ| ≤ 0.03 and max |Δ| ≤ 0.5 over all top-5 entries of all positions; the top-1 token agrees
    /// wherever the reference's top-1/top-2 margin exceeds 0.1.
    /// </summary>
    [Theory]
    [MemberData(nameof(Models))]
    public void Bf16_logprobs_stay_close_to_transformers_bf16(string model)
    {
        var deltas = new List<double>();
        foreach (var (pos, ours, expectedIds, expectedLp) in Positions(model, "bf16", ScalarType.BFloat16))
        {
            deltas.AddRange(expectedIds.Select((id, j) => Math.Abs(ours[id] - expectedLp[j])));
            if (expectedLp[0] - expectedLp[1] > 0.1)
                Assert.Equal(expectedIds[0], Enumerable.Range(0, ours.Length).MaxBy(t => ours[t]));
        }
        Assert.True(deltas.Average() <= 0.03, $"{model}: mean |Δ| {deltas.Average():F4}");
        Assert.True(deltas.Max() <= 0.5, $"{model}: max |Δ| {deltas.Max():F4}");
    }

    private static IEnumerable<(int Pos, float[] Ours, int[] Ids, double[] LogProbs)> Positions(string model, string section, ScalarType dtype)
    {
        foreach (var prompt in Reference(model, section).GetProperty("prompts").EnumerateArray())
        {
            var ids = prompt.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var ours = LogProbs(model, dtype, ids);
            var topIds = prompt.GetProperty("top_ids").EnumerateArray().ToArray();
            var topLogprobs = prompt.GetProperty("top_logprobs").EnumerateArray().ToArray();
            Assert.Equal(ids.Length, topIds.Length);
            for (var pos = 0; pos < ids.Length; pos++)
                yield return (pos, ours[pos], topIds[pos].EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                    topLogprobs[pos].EnumerateArray().Select(e => e.GetDouble()).ToArray());
        }
    }

    private static float[] LastLogProbs(string model, ScalarType dtype, long[] ids) => LogProbs(model, dtype, ids)[^1];

    /// <summary>log-softmax over the whole vocabulary at every position of one sequence.</summary>
    private static float[][] LogProbs(string model, ScalarType dtype, long[] ids)
    {
        var lm = TinyModels.Get(model, dtype);
        using var scope = NewDisposeScope();
        var logprobs = lm.Logits(lm.Hidden(lm.Embed(tensor(ids, [1, ids.Length])))).log_softmax(-1)[0];
        var vocab = (int)logprobs.shape[1];
        var flat = logprobs.data<float>().ToArray();
        return Enumerable.Range(0, ids.Length).Select(p => flat.AsSpan(p * vocab, vocab).ToArray()).ToArray();
    }
}

using static TorchSharp.torch;

namespace MLNode.Engines.Llm.Sampling;

/// <summary>
/// Picks next tokens the way Gonka's vLLM sampler does (see <see cref="StepTokens"/>, which does the work) and waits
/// for them: for callers that need the tokens before they go on.
/// </summary>
public static class TokenSampler
{
    /// <param name="logits">float32 [V] on any device.</param>
    /// <param name="step">index of the token being generated (0 for the first), for the seeded draw.</param>
    /// <param name="forced">the token to emit instead of sampling (validator replay); its logprob is still this model's.</param>
    /// <param name="unmasked">the model's logits [V] when <paramref name="logits"/> carry decoding-rule masks, as in <see cref="NextBatch"/>.</param>
    public static TokenLogprob Next(Tensor logits, SamplingParams p, int step, int? forced = null, Tensor? unmasked = null)
    {
        using var scope = NewDisposeScope();
        return NextBatch(logits.unsqueeze(0), [p], [step], [forced], unmasked?.unsqueeze(0))[0];
    }

    /// <summary>
    /// The next token of every row of <paramref name="logits"/> [B, V], computed for the whole batch on the logits'
    /// device and copied to the host once. <paramref name="unmasked"/> [B, V], when given, are the logits before
    /// decoding-rule masks (Whisper's suppression and timestamp rules): tokens come from the masked logits, Raw
    /// logprobs from these.
    /// </summary>
    public static TokenLogprob[] NextBatch(Tensor logits, IReadOnlyList<SamplingParams> p, IReadOnlyList<int> steps, IReadOnlyList<int?> forced, Tensor? unmasked = null)
    {
        using var tokens = StepTokens.Launch(logits, p, steps, forced, unmasked);
        return tokens.Read();
    }
}

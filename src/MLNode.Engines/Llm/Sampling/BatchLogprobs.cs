using MLNode.Runtime.Native;
using static TorchSharp.torch;

namespace MLNode.Engines.Llm.Sampling;

/// <summary>
/// What a decode step reports for rows of logits [B, V] whose sampling needs no masks: per row the k best
/// tokens of log_softmax(logits / T) in descending order, the logprob of a chosen token, and the best token.
/// On CUDA with the native library this is one fused kernel that reads the logits once; elsewhere, and as
/// that kernel's oracle, the TorchSharp ops of <see cref="Reference"/>. Min-p, top-k and top-p masks are not
/// covered: <see cref="StepTokens"/> applies them to the rows that use them.
/// </summary>
public static class BatchLogprobs
{
    /// <param name="logits">[B, V], any floating type (the kernel takes float32, bfloat16 and float16).</param>
    /// <param name="k">how many of the best tokens to report, ≥ 1.</param>
    /// <param name="chosen">int64 [B] on the logits' device: the token whose logprob to report, −1 for the best one.</param>
    /// <param name="temperature">float32 [B] on the logits' device; null for the raw distribution.</param>
    /// <returns>Values float32 [B, k], Ids int64 [B, k], ChosenLogprob float32 [B], Argmax int64 [B] (Ids[:, 0], the best token).</returns>
    public static (Tensor Values, Tensor Ids, Tensor ChosenLogprob, Tensor Argmax) Compute(Tensor logits, int k, Tensor? chosen = null, Tensor? temperature = null) =>
        NativeKernels.Handles(logits) && k <= NativeKernels.MaxTopLogprobs && logits.dtype is ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16
            ? NativeKernels.TopkLogprobs(logits.contiguous(), k, chosen, temperature)
            : Reference(logits, k, chosen, temperature);

    /// <summary>
    /// log_softmax, topk and gather. Equal values come in torch.topk's order, which libtorch leaves unspecified;
    /// the native kernel puts the lower id first. Scaling multiplies by 1 / T, as libtorch's division of a CUDA
    /// tensor by a scalar does, so both round alike there.
    /// </summary>
    public static (Tensor Values, Tensor Ids, Tensor ChosenLogprob, Tensor Argmax) Reference(Tensor logits, int k, Tensor? chosen = null, Tensor? temperature = null)
    {
        var scaled = logits.to(ScalarType.Float32);
        if (temperature is not null) scaled = scaled * temperature.reciprocal().unsqueeze(1);
        var logprobs = scaled.log_softmax(-1);
        var (values, ids) = logprobs.topk(k);
        var argmax = ids[TensorIndex.Colon, 0];
        var token = chosen is null ? argmax : where(chosen < 0, argmax, chosen);
        return (values, ids, logprobs.gather(1, token.unsqueeze(1)).squeeze(1), argmax);
    }
}

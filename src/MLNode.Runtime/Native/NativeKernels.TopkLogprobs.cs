using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace MLNode.Runtime.Native;

public static partial class NativeKernels
{
    /// <summary>The largest k of <see cref="TopkLogprobs"/>: the kernel keeps one list entry per lane of a warp.</summary>
    public const int MaxTopLogprobs = 32;

    /// <summary>
    /// Per row of <paramref name="logits"/> [B, V] (float32, bfloat16 or float16, contiguous, on CUDA), in two launches
    /// that read the logits once: the <paramref name="k"/> best tokens of log_softmax(logits / T) in descending
    /// order (equal values: lower id first), the logprob of each row's chosen token, and the argmax (the lowest id
    /// of the maximum). Reference: <c>BatchLogprobs.Reference</c> in MLNode.Engines (log_softmax, topk, gather).
    /// </summary>
    /// <param name="k">1 ≤ k ≤ min(<see cref="MaxTopLogprobs"/>, V).</param>
    /// <param name="chosen">int64 [B] on the logits' device: the token whose logprob to report, −1 for the argmax
    /// (an id ≥ V reports NaN: the ids are on the device and not checked); null for the argmax of every row.</param>
    /// <param name="temperature">float32 [B] on the logits' device, every entry &gt; 0; null for raw logprobs (T = 1).</param>
    /// <returns>Values float32 [B, k], Ids int64 [B, k], ChosenLogprob float32 [B], Argmax int64 [B].</returns>
    public static (Tensor Values, Tensor Ids, Tensor ChosenLogprob, Tensor Argmax) TopkLogprobs(
        Tensor logits, int k, Tensor? chosen = null, Tensor? temperature = null)
    {
        if (logits.dim() != 2)
            throw new ArgumentException($"logits must be [B, V]; got [{string.Join(", ", logits.shape)}]", nameof(logits));
        if (!Handles(logits))
            throw new ArgumentException($"logits must be on a CUDA device with the native kernels loaded; got {logits.device} ({Description})", nameof(logits));
        var rows = logits.shape[0];
        RequireRowVector(chosen, ScalarType.Int64, rows, logits.device, nameof(chosen));
        RequireRowVector(temperature, ScalarType.Float32, rows, logits.device, nameof(temperature));

        var values = empty([rows, k], ScalarType.Float32, logits.device);
        var ids = empty([rows, k], ScalarType.Int64, logits.device);
        var chosenLogprob = empty([rows], ScalarType.Float32, logits.device);
        var argmax = empty([rows], ScalarType.Int64, logits.device);
        Check(mlnode_topk_logprobs_scratch_bytes(rows, k, out var scratchBytes), nameof(mlnode_topk_logprobs_scratch_bytes));
        // The row slices' partial results, from libtorch's caching allocator: freed with the call, reused by the next.
        using var scratch = empty([scratchBytes], ScalarType.Byte, logits.device);
        Check(mlnode_topk_logprobs(Pointer(logits), (int)logits.dtype, rows, logits.shape[1],
                temperature is null ? 0 : Pointer(temperature), chosen is null ? 0 : Pointer(chosen), k,
                Pointer(values), Pointer(ids), Pointer(chosenLogprob), Pointer(argmax), Pointer(scratch), scratchBytes, Stream),
            nameof(mlnode_topk_logprobs));
        return (values, ids, chosenLogprob, argmax);
    }

    private static void RequireRowVector(Tensor? t, ScalarType dtype, long rows, Device device, string name)
    {
        if (t is null) return;
        if (t.dtype != dtype || t.dim() != 1 || t.shape[0] != rows || t.device_type != device.type || t.device_index != device.index)
            throw new ArgumentException($"{name} must be {dtype} [{rows}] on {device}; got {t.dtype} [{string.Join(", ", t.shape)}] on {t.device}", name);
    }

    [LibraryImport(LibraryName)]
    private static partial int mlnode_topk_logprobs(nint logits, int dtype, long rows, long vocab, nint temperature, nint chosen, int k,
        nint values, nint ids, nint chosenLogprob, nint argmax, nint scratch, long scratchBytes, nint stream);

    [LibraryImport(LibraryName)]
    private static partial int mlnode_topk_logprobs_scratch_bytes(long rows, int k, out long bytes);
}

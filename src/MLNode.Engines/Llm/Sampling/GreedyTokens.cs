using MLNode.Runtime.Native;
using static TorchSharp.torch;

namespace MLNode.Engines.Llm.Sampling;

/// <summary>
/// The tokens of one step's greedy or replayed rows with their logprobs: computed on the device by
/// <see cref="BatchLogprobs"/>, copied to the host without blocking, read when the host needs them. The tokens also stay
/// on the device (<see cref="Next"/>), so the generator can queue the next step from them before it reads them.
/// </summary>
public sealed class GreedyTokens : IDisposable
{
    private readonly HostCopy _copy;
    private readonly int _k;

    private GreedyTokens(Tensor next, HostCopy copy, int k) => (Next, _copy, _k) = (next, copy, k);

    /// <summary>int64 [B] on the logits' device: each row's token, the chosen one or else the best.</summary>
    public Tensor Next { get; }

    /// <param name="logits">[B, V] of the rows, any floating type.</param>
    /// <param name="k">how many of the best tokens to report per row, ≥ 1.</param>
    /// <param name="chosen">int64 [B] on the logits' device: the token to emit (replay), −1 for the best one.</param>
    public static GreedyTokens Launch(Tensor logits, int k, Tensor chosen)
    {
        using var scope = NewDisposeScope();
        var (values, ids, chosenLogprob, argmax) = BatchLogprobs.Compute(logits, k, chosen);
        var next = where(chosen < 0, argmax, chosen);
        return new GreedyTokens(next.DetachFromDisposeScope(), HostCopy.Start(values, ids, chosenLogprob, next), k);
    }

    /// <summary>Each row's token, its logprob and its <paramref name="topLogprobs"/>[row] best entries (waits for the copy).</summary>
    public TokenLogprob[] Read(IReadOnlyList<int> topLogprobs)
    {
        var host = _copy.Wait();
        var values = host[0].data<float>().ToArray();
        var ids = host[1].data<long>().ToArray();
        var chosenLogprob = host[2].data<float>().ToArray();
        var next = host[3].data<long>().ToArray();
        return [.. Enumerable.Range(0, topLogprobs.Count).Select(row => new TokenLogprob((int)next[row], chosenLogprob[row],
            [.. Enumerable.Range(row * _k, topLogprobs[row]).Select(j => ((int)ids[j], values[j]))]))];
    }

    public void Dispose()
    {
        _copy.Dispose();
        Next.Dispose();
    }
}

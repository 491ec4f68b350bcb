using static TorchSharp.torch;

namespace MLNode.Runtime.Collectives;

/// <summary>
/// One rank's end of a group of <see cref="WorldSize"/> ranks that run the same sequence of collectives. Every rank
/// calls every collective in the same order with tensors of the same shape and dtype; a rank that stops calling
/// (it failed) must <see cref="Abort"/> the group, or the others wait for it forever.
/// </summary>
public interface ICommunicator : IDisposable
{
    int Rank { get; }
    int WorldSize { get; }

    /// <summary>Replaces <paramref name="tensor"/> on every rank by the element-wise sum over all ranks; every rank gets the same bits.</summary>
    void AllReduceSum(Tensor tensor);

    /// <summary>The ranks' tensors concatenated along <paramref name="dim"/> in rank order (every rank's of the same shape).</summary>
    Tensor AllGather(Tensor tensor, long dim);

    /// <summary>Overwrites <paramref name="tensor"/> on every rank with <paramref name="root"/>'s.</summary>
    void Broadcast(Tensor tensor, int root);

    /// <summary>Returns once every rank has reached it.</summary>
    void Barrier();

    /// <summary>
    /// Ends the group because <paramref name="cause"/> stopped a rank: every rank's pending and later collectives throw
    /// <see cref="CommunicatorAbortedException"/> instead of waiting. Idempotent; the first cause is kept.
    /// </summary>
    void Abort(Exception cause);
}

/// <summary>A collective could not complete because the group was aborted (a rank failed, or the work was cancelled).</summary>
public sealed class CommunicatorAbortedException(string message, Exception? cause) : Exception(message, cause);

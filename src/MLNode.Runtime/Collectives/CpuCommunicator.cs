using static TorchSharp.torch;

namespace MLNode.Runtime.Collectives;

/// <summary>
/// A communicator group of N ranks that are N threads of this process, over CPU (or any) tensors: what the tests and a
/// CPU-only node run tensor parallelism with. Each collective is a rendezvous: every rank posts its tensor, each reads
/// the others' and computes its own result, and all wait until every rank has read before anyone writes. Sums add the
/// ranks' tensors in rank order on every rank, so every rank gets bit-identical results, as NCCL's do.
/// </summary>
public sealed class CpuCommunicator : ICommunicator
{
    private readonly Rendezvous _group;

    private CpuCommunicator(Rendezvous group, int rank) => (_group, Rank) = (group, rank);

    public int Rank { get; }
    public int WorldSize => _group.Size;

    /// <summary>
    /// The <paramref name="worldSize"/> communicators of one group, by rank; each is used by one thread.
    /// <paramref name="ct"/> aborts the group when cancelled.
    /// </summary>
    public static IReadOnlyList<CpuCommunicator> CreateGroup(int worldSize, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(worldSize, 1);
        var group = new Rendezvous(worldSize, ct);
        return Enumerable.Range(0, worldSize).Select(r => new CpuCommunicator(group, r)).ToArray();
    }

    public void AllReduceSum(Tensor tensor)
    {
        var all = _group.Arrive(Rank, tensor);
        using var sum = all[0].clone();
        for (var r = 1; r < all.Length; r++) sum.add_(all[r]);
        _group.Depart(Rank);
        tensor.copy_(sum);
    }

    public Tensor AllGather(Tensor tensor, long dim)
    {
        var all = _group.Arrive(Rank, tensor);
        var gathered = cat(all, dim);
        _group.Depart(Rank);
        return gathered;
    }

    public void Broadcast(Tensor tensor, int root)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(root);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(root, WorldSize);
        var all = _group.Arrive(Rank, tensor);
        // Only the root's tensor is read, and the root never writes: the others may overwrite theirs before departing.
        if (Rank != root) tensor.copy_(all[root]);
        _group.Depart(Rank);
    }

    public void Barrier()
    {
        _group.Arrive(Rank, null);
        _group.Depart(Rank);
    }

    public void Abort(Exception cause) => _group.Abort(cause);

    public void Dispose() => _group.Leave();

    /// <summary>The shared state of one group: the posted tensors and the two barriers of each collective.</summary>
    private sealed class Rendezvous
    {
        private readonly Tensor?[] _posted;
        private readonly Barrier _arrived;
        private readonly Barrier _departed;
        private readonly CancellationTokenSource _abort;
        private readonly CancellationTokenRegistration _external;
        private Exception? _cause;
        private int _members;

        public Rendezvous(int size, CancellationToken ct)
        {
            Size = _members = size;
            _posted = new Tensor?[size];
            _arrived = new Barrier(size);
            _departed = new Barrier(size);
            _abort = new CancellationTokenSource();
            _external = ct.Register(() => Abort(new OperationCanceledException("the tensor-parallel work was cancelled", ct)));
        }

        public int Size { get; }

        /// <summary>Posts this rank's tensor and waits for every rank's; the returned tensors stay valid until <see cref="Depart"/>.</summary>
        public Tensor[] Arrive(int rank, Tensor? tensor)
        {
            ThrowIfAborted(rank);
            _posted[rank] = tensor;
            Wait(_arrived, rank);
            return tensor is null ? [] : _posted.Select((t, r) => t ?? throw Mismatch(rank, r)).ToArray();
        }

        /// <summary>Waits until every rank has read the posted tensors, so that each may change or reuse its own.</summary>
        public void Depart(int rank) => Wait(_departed, rank);

        public void Abort(Exception cause)
        {
            if (Interlocked.CompareExchange(ref _cause, cause, null) is null) _abort.Cancel();
        }

        public void Leave()
        {
            if (Interlocked.Decrement(ref _members) != 0) return;
            _external.Dispose();
            _arrived.Dispose();
            _departed.Dispose();
            _abort.Dispose();
        }

        private void Wait(Barrier barrier, int rank)
        {
            try
            {
                barrier.SignalAndWait(_abort.Token);
            }
            catch (OperationCanceledException)
            {
                ThrowIfAborted(rank);
                throw;
            }
        }

        private void ThrowIfAborted(int rank)
        {
            if (Volatile.Read(ref _cause) is { } cause)
                throw new CommunicatorAbortedException($"rank {rank} of {Size}: the group was aborted ({cause.Message})", cause);
        }

        private Exception Mismatch(int rank, int other)
        {
            var error = new InvalidOperationException($"rank {rank} of {Size} posted a tensor to a collective where rank {other} called a barrier");
            Abort(error);
            return error;
        }
    }
}

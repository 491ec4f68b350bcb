using System.Collections.Concurrent;
using MLNode.Runtime.Collectives;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Hosting;

/// <summary>
/// The ranks of a tensor-parallel model driven in lockstep, each by its own thread: <see cref="Run{T}"/> hands the same
/// work to every rank at once and returns when all are done, so the ranks meet in the same collectives in the same
/// order. Calls from several threads are queued in one order for every rank. A model of one rank without a
/// communicator runs its work on the caller's thread instead.
/// </summary>
/// <remarks>
/// A rank that throws aborts every rank's communicator, so the others' collectives throw instead of waiting for it;
/// the model is then stopped: this call and every later one throw a <see cref="TensorParallelException"/> naming the
/// failed rank and its error. The threads stay until <see cref="Dispose"/>, which releases the ranks on them.
/// </remarks>
public sealed class RankThreads<TRank> : IDisposable where TRank : class
{
    private readonly IReadOnlyList<ICommunicator> _communicators;
    private readonly Action<TRank> _release;
    private readonly RankWorker[] _workers;
    private readonly Lock _order = new();
    private TRank[] _ranks = [];
    private TensorParallelException? _failure;
    private bool _disposed;

    private RankThreads(IReadOnlyList<ICommunicator> communicators, Action<TRank> release)
    {
        (_communicators, _release) = (communicators, release);
        _workers = communicators.Select(c => new RankWorker(c.Rank)).ToArray();
    }

    /// <summary>The ranks, in rank order; touch one only from its own thread (inside <see cref="Run{T}"/>).</summary>
    public IReadOnlyList<TRank> Ranks => _ranks;

    public int WorldSize => _ranks.Length;

    /// <summary>The failure that stopped the model; null while it serves.</summary>
    public TensorParallelException? Failure => Volatile.Read(ref _failure);

    /// <summary>
    /// Starts a thread per communicator (by rank) and builds each rank on its own thread with <paramref name="build"/>;
    /// <paramref name="release"/> frees a rank, on its thread, at <see cref="Dispose"/>. A build that fails releases
    /// the ranks already built and throws.
    /// </summary>
    public static RankThreads<TRank> Start(IReadOnlyList<ICommunicator> communicators, Func<ICommunicator, TRank> build, Action<TRank> release)
    {
        if (communicators.Select((c, i) => c.Rank == i && c.WorldSize == communicators.Count).Contains(false))
            throw new ArgumentException("communicators must be ranks 0..N-1 of one group of N, in order", nameof(communicators));
        var group = new RankThreads<TRank>(communicators, release);
        try
        {
            group._ranks = group.OnEveryRank(rank => build(communicators[rank]));
            return group;
        }
        catch
        {
            group.Dispose();
            throw;
        }
    }

    /// <summary>One rank without a communicator: its work runs on the caller's thread.</summary>
    public static RankThreads<TRank> Inline(TRank rank, Action<TRank> release) => new([], release) { _ranks = [rank] };

    /// <summary>Runs <paramref name="work"/> on every rank and returns every rank's result, in rank order.</summary>
    public T[] Run<T>(Func<TRank, T> work)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_workers.Length == 0) return [work(_ranks[0])];
        return OnEveryRank(rank => work(_ranks[rank]));
    }

    /// <summary>
    /// Runs <paramref name="work"/> on every rank and keeps the last rank's tensor (the others computed the same and are
    /// freed), owned by the caller's dispose scope as if the caller had computed it.
    /// </summary>
    public Tensor RunLast(Func<TRank, Tensor> work)
    {
        var results = Run(work);
        foreach (var other in results.AsSpan(0, results.Length - 1)) other.Dispose();
        var last = results[^1];
        if (_workers.Length > 0) torch.CurrentDisposeScope?.Attach(last);
        return last;
    }

    private T[] OnEveryRank<T>(Func<int, T> work)
    {
        ThrowIfStopped();
        var results = new T[_workers.Length];
        var errors = new Exception?[_workers.Length];
        using var done = new CountdownEvent(_workers.Length);
        lock (_order)
        {
            for (var r = 0; r < _workers.Length; r++)
            {
                var rank = r;
                _workers[rank].Post(() =>
                {
                    try
                    {
                        results[rank] = work(rank);
                    }
                    catch (Exception e)
                    {
                        errors[rank] = e;
                        foreach (var c in _communicators) c.Abort(e);
                    }
                    finally
                    {
                        done.Signal();
                    }
                });
            }
        }
        done.Wait();
        if (errors.All(e => e is null)) return results;

        foreach (var result in results.OfType<IDisposable>()) result.Dispose();
        // The rank that failed first is the one whose error is not the abort it caused in the others.
        var failed = Array.FindIndex(errors, e => e is not null and not CommunicatorAbortedException);
        if (failed < 0) failed = Array.FindIndex(errors, e => e is not null);
        var failure = new TensorParallelException(failed, _workers.Length, errors[failed]!);
        Interlocked.CompareExchange(ref _failure, failure, null);
        throw failure;
    }

    private void ThrowIfStopped()
    {
        if (Volatile.Read(ref _failure) is { } failure)
            throw new TensorParallelException(failure.Rank, failure.WorldSize, failure.InnerException!);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_workers.Length == 0)
        {
            foreach (var rank in _ranks) _release(rank);
            return;
        }
        var ranks = _ranks;
        var errors = new ConcurrentQueue<Exception>();
        using (var released = new CountdownEvent(ranks.Length))
        {
            for (var r = 0; r < ranks.Length; r++)
            {
                var rank = ranks[r];
                _workers[r].Post(() =>
                {
                    try
                    {
                        _release(rank);
                    }
                    catch (Exception e)
                    {
                        errors.Enqueue(e);
                    }
                    finally
                    {
                        released.Signal();
                    }
                });
            }
            released.Wait();
        }
        foreach (var worker in _workers) worker.Stop();
        foreach (var c in _communicators) c.Dispose();
        if (!errors.IsEmpty) throw new AggregateException("releasing the tensor-parallel ranks failed", errors);
    }

    /// <summary>A thread that runs one rank's work items in the order they were posted.</summary>
    private sealed class RankWorker
    {
        private readonly BlockingCollection<Action> _queue = [];
        private readonly Thread _thread;

        public RankWorker(int rank)
        {
            _thread = new Thread(() =>
            {
                torch.set_grad_enabled(false);
                foreach (var item in _queue.GetConsumingEnumerable()) item();
            })
            { IsBackground = true, Name = $"tensor-parallel rank {rank}" };
            // Without the starter's execution context: TorchSharp keeps dispose scopes per thread and async flow, and a
            // scope open on the starting thread would otherwise own (and later free) the tensors this rank makes.
            using (ExecutionContext.SuppressFlow()) _thread.Start();
        }

        public void Post(Action item) => _queue.Add(item);

        public void Stop()
        {
            _queue.CompleteAdding();
            _thread.Join();
            _queue.Dispose();
        }
    }
}

/// <summary>A tensor-parallel rank failed; the model it belonged to is stopped.</summary>
public sealed class TensorParallelException(int rank, int worldSize, Exception cause)
    : Exception($"tensor-parallel rank {rank} of {worldSize} failed, and the model is stopped: {cause.Message}", cause)
{
    public int Rank { get; } = rank;
    public int WorldSize { get; } = worldSize;
}

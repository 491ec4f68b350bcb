using MLNode.Runtime.Collectives;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Runtime.Tests.Collectives;

public sealed class CpuCommunicatorTests
{
    /// <summary>Runs <paramref name="body"/> as every rank of a new group, one thread each, and returns the ranks' results.</summary>
    private static T[] OnRanks<T>(int worldSize, Func<ICommunicator, T> body)
    {
        var comms = CpuCommunicator.CreateGroup(worldSize, TestContext.Current.CancellationToken);
        try
        {
            var tasks = comms.Select(c => Task.Factory.StartNew(() =>
            {
                try
                {
                    return body(c);
                }
                catch (Exception e)
                {
                    c.Abort(e);
                    throw;
                }
            }, TaskCreationOptions.LongRunning)).ToArray();
            Task.WaitAll(tasks, TimeSpan.FromSeconds(30));
            return tasks.Select(t => t.Result).ToArray();
        }
        finally
        {
            foreach (var c in comms) c.Dispose();
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public void All_reduce_gives_every_rank_the_same_bits_of_the_rank_ordered_sum(int worldSize)
    {
        // Values of very different magnitudes make the float32 sum depend on its order.
        var results = OnRanks(worldSize, c =>
        {
            using var x = (randn([1000], generator: new Generator((ulong)(c.Rank + 1))) * MathF.Pow(10, c.Rank)).to(ScalarType.Float32);
            c.AllReduceSum(x);
            return x.data<float>().ToArray();
        });
        var inputs = Enumerable.Range(0, worldSize).Select(r => (randn([1000], generator: new Generator((ulong)(r + 1))) * MathF.Pow(10, r)).data<float>().ToArray()).ToArray();
        var expected = Enumerable.Range(0, 1000).Select(i =>
        {
            var sum = inputs[0][i];
            for (var r = 1; r < worldSize; r++) sum += inputs[r][i];
            return sum;
        }).ToArray();
        Assert.All(results, r => Assert.Equal(expected, r));
    }

    [Fact]
    public void All_gather_concatenates_in_rank_order_along_any_dimension()
    {
        var results = OnRanks(3, c =>
        {
            using var x = full([2, 2], (float)c.Rank);
            using var rows = c.AllGather(x, 0);
            using var columns = c.AllGather(x, -1);
            return (Rows: rows.data<float>().ToArray(), RowShape: rows.shape, Columns: columns.data<float>().ToArray(), ColumnShape: columns.shape);
        });
        foreach (var r in results)
        {
            Assert.Equal([6L, 2], r.RowShape);
            Assert.Equal([0f, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2], r.Rows);
            Assert.Equal([2L, 6], r.ColumnShape);
            Assert.Equal([0f, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2], r.Columns);
        }
    }

    [Fact]
    public void Broadcast_copies_the_root_and_the_group_survives_many_collectives()
    {
        var results = OnRanks(4, c =>
        {
            var received = new List<float>();
            for (var i = 0; i < 200; i++)
            {
                using var x = full([3], (float)(100 * c.Rank + i));
                c.Barrier();
                c.Broadcast(x, i % 4);
                received.AddRange(x.data<float>().ToArray().Distinct());
            }
            return received;
        });
        var expected = Enumerable.Range(0, 200).Select(i => (float)(100 * (i % 4) + i)).ToList();
        Assert.All(results, r => Assert.Equal(expected, r));
    }

    [Fact]
    public void A_rank_that_throws_makes_the_others_collectives_throw_instead_of_hanging()
    {
        var failure = Assert.Throws<AggregateException>(() => OnRanks(3, c =>
        {
            using var x = ones(4);
            c.AllReduceSum(x);
            if (c.Rank == 1) throw new InvalidOperationException("injected fault on rank 1");
            c.AllReduceSum(x);
            return 0;
        }));
        var errors = failure.InnerExceptions;
        Assert.Equal(3, errors.Count);
        Assert.Single(errors, e => e is InvalidOperationException { Message: "injected fault on rank 1" });
        var aborted = errors.OfType<CommunicatorAbortedException>().ToArray();
        Assert.Equal(2, aborted.Length);
        Assert.All(aborted, e => Assert.Contains("injected fault on rank 1", e.Message));
    }

    [Fact]
    public void Cancelling_the_group_releases_a_rank_waiting_for_the_others()
    {
        using var cancel = new CancellationTokenSource();
        var comms = CpuCommunicator.CreateGroup(2, cancel.Token);
        var waiting = Task.Factory.StartNew(() =>
        {
            using var x = ones(1);
            comms[0].AllReduceSum(x); // rank 1 never comes
        }, TaskCreationOptions.LongRunning);
        cancel.CancelAfter(50);
        var error = Assert.Throws<AggregateException>(() => waiting.Wait(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        Assert.IsType<CommunicatorAbortedException>(error.InnerException);
        Assert.IsType<OperationCanceledException>(error.InnerException!.InnerException);
        foreach (var c in comms) c.Dispose();
    }
}

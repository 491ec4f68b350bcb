using MLNode.Protocol.Poc;
using Xunit;

namespace MLNode.Protocol.Tests.Poc;

public class NonceIteratorTests
{
    [Fact]
    public void SecondOfTwoNodes_TakesTheOddNonces()
    {
        var iterator = new NonceIterator(nodeId: 1, nodeCount: 2);
        Assert.Equal([1L, 3, 5], iterator.Take(3));
        Assert.Equal([7L, 9], iterator.Take(2));
        Assert.Equal(11, iterator.Next());
    }

    [Fact]
    public void GroupsOfOneNode_Interleave()
    {
        // node 1 of 3, backend 2 of 4: offset 1 + 2·3 = 7, step 4·3 = 12.
        var iterator = new NonceIterator(nodeId: 1, nodeCount: 3, groupId: 2, groupCount: 4);
        Assert.Equal([7L, 19, 31, 43], iterator.Take(4));
        Assert.Equal(7 + 1000L * 12, iterator.NonceAt(1000));
    }

    [Fact]
    public void AllNodesAndGroups_CoverEveryNonceOnce()
    {
        const int nodes = 3, groups = 2, perBackend = 50;
        var all = new List<long>();
        for (var node = 0; node < nodes; node++)
        {
            for (var group = 0; group < groups; group++)
                all.AddRange(new NonceIterator(node, nodes, group, groups).Take(perBackend));
        }
        Assert.Equal(Enumerable.Range(0, nodes * groups * perBackend).Select(n => (long)n), all.Order());
    }

    [Fact]
    public void RejectsMeaninglessCounts()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new NonceIterator(0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new NonceIterator(-1, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => new NonceIterator(0, 1, 0, 0));
    }
}

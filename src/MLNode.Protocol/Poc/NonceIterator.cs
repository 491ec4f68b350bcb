namespace MLNode.Protocol.Poc;

/// <summary>
/// The nonces one backend computes: <c>nonce_x = node_id + group_id·node_count + x·(n_groups·node_count)</c>,
/// x = 0, 1, 2, … — disjoint across the nodes of a participant and the backends (groups) of a node.
/// </summary>
/// <remarks>Not thread-safe: one generation loop owns one iterator.</remarks>
public sealed class NonceIterator
{
    private readonly long _offset;
    private readonly long _step;
    private long _x;

    /// <param name="nodeId">This ML node's index among the participant's nodes.</param>
    /// <param name="nodeCount">Number of ML nodes of the participant.</param>
    /// <param name="groupId">This backend's index on the node (the ML node assigns it).</param>
    /// <param name="groupCount">Number of healthy backends on the node.</param>
    public NonceIterator(long nodeId, long nodeCount, long groupId = 0, long groupCount = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(nodeId);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(nodeCount);
        ArgumentOutOfRangeException.ThrowIfNegative(groupId);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(groupCount);
        _offset = checked(nodeId + groupId * nodeCount);
        _step = checked(groupCount * nodeCount);
    }

    /// <summary>The x-th nonce of this backend, independent of the iteration state.</summary>
    public long NonceAt(long x) => checked(_offset + x * _step);

    public long Next() => NonceAt(_x++);

    /// <summary>The next <paramref name="batchSize"/> nonces.</summary>
    public long[] Take(int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batchSize);
        var nonces = new long[batchSize];
        for (var i = 0; i < batchSize; i++)
            nonces[i] = Next();
        return nonces;
    }
}

using System.Security.Cryptography;

namespace MLNode.Protocol.Diffusion;

/// <summary>
/// The Merkle tree of RFC 9162 §2.1 (Certificate Transparency) over SHA-256: a leaf hashes as H(0x00 ‖ data), an inner
/// node as H(0x01 ‖ left ‖ right), and n leaves split into a left subtree of the largest power of two below n and a
/// right subtree of the rest. The prefixes keep a leaf from ever passing for an inner node (second-preimage safety);
/// the split keeps every proof at most ⌈log2 n⌉ hashes without padding leaves.
/// </summary>
public static class MerkleTree
{
    public const int HashBytes = 32;

    private const byte LeafPrefix = 0x00;
    private const byte NodePrefix = 0x01;

    public static byte[] LeafHash(ReadOnlySpan<byte> data) => Hash(LeafPrefix, data, []);

    public static byte[] NodeHash(ReadOnlySpan<byte> left, ReadOnlySpan<byte> right) => Hash(NodePrefix, left, right);

    /// <summary>The root over <paramref name="leaves"/> (the leaves' data, not yet hashed); at least one leaf.</summary>
    public static byte[] Root(IReadOnlyList<byte[]> leaves)
    {
        ArgumentNullException.ThrowIfNull(leaves);
        if (leaves.Count == 0) throw new ArgumentException("a Merkle tree needs at least one leaf", nameof(leaves));
        return Subtree([.. leaves.Select(leaf => LeafHash(leaf))], 0, leaves.Count);
    }

    /// <summary>
    /// The audit path of leaf <paramref name="index"/> (RFC 9162 §2.1.3.1): the sibling subtree roots from the leaf's
    /// level up to the root's children.
    /// </summary>
    public static IReadOnlyList<byte[]> Proof(IReadOnlyList<byte[]> leaves, int index)
    {
        ArgumentNullException.ThrowIfNull(leaves);
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, leaves.Count);
        var hashes = leaves.Select(leaf => LeafHash(leaf)).ToArray();
        var path = new List<byte[]>();
        Path(hashes, index, 0, hashes.Length, path);
        return path;
    }

    /// <summary>
    /// Whether <paramref name="proof"/> leads from leaf <paramref name="index"/>'s <paramref name="data"/> in a tree of
    /// <paramref name="count"/> leaves to <paramref name="root"/> (RFC 9162 §2.1.3.2, which also rejects a proof of the
    /// wrong length).
    /// </summary>
    public static bool Verify(ReadOnlySpan<byte> data, int index, int count, IReadOnlyList<byte[]> proof, ReadOnlySpan<byte> root)
    {
        ArgumentNullException.ThrowIfNull(proof);
        if (index < 0 || index >= count || root.Length != HashBytes) return false;
        long fn = index, sn = count - 1;
        var hash = LeafHash(data);
        foreach (var sibling in proof)
        {
            if (sn == 0 || sibling.Length != HashBytes) return false;
            if ((fn & 1) == 1 || fn == sn)
            {
                hash = NodeHash(sibling, hash);
                // A right-most node without a sibling at its level rises unchanged until it is a right child.
                while ((fn & 1) == 0 && fn != 0)
                    (fn, sn) = (fn >> 1, sn >> 1);
            }
            else
            {
                hash = NodeHash(hash, sibling);
            }
            (fn, sn) = (fn >> 1, sn >> 1);
        }
        return sn == 0 && hash.AsSpan().SequenceEqual(root);
    }

    private static byte[] Subtree(byte[][] hashes, int start, int end)
    {
        if (end - start == 1) return hashes[start];
        var split = start + LargestPowerOfTwoBelow(end - start);
        return NodeHash(Subtree(hashes, start, split), Subtree(hashes, split, end));
    }

    private static void Path(byte[][] hashes, int index, int start, int end, List<byte[]> path)
    {
        if (end - start == 1) return;
        var split = start + LargestPowerOfTwoBelow(end - start);
        if (index < split)
        {
            Path(hashes, index, start, split, path);
            path.Add(Subtree(hashes, split, end));
        }
        else
        {
            Path(hashes, index, split, end, path);
            path.Add(Subtree(hashes, start, split));
        }
    }

    /// <summary>k of RFC 9162: the largest power of two smaller than <paramref name="n"/> (n ≥ 2).</summary>
    private static int LargestPowerOfTwoBelow(int n) => 1 << (31 - int.LeadingZeroCount(n - 1));

    private static byte[] Hash(byte prefix, ReadOnlySpan<byte> first, ReadOnlySpan<byte> second)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData([prefix]);
        sha.AppendData(first);
        sha.AppendData(second);
        return sha.GetHashAndReset();
    }
}

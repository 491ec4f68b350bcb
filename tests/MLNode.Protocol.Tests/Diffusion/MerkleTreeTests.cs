using MLNode.Protocol.Diffusion;
using Xunit;

namespace MLNode.Protocol.Tests.Diffusion;

/// <summary>
/// The tree against RFC 6962's published vectors (certificate-transparency's test data: eight leaves, the roots of their
/// first 1…8, and audit paths), and proofs of every leaf of every tree up to 40 leaves, failing when tampered.
/// </summary>
public sealed class MerkleTreeTests
{
    private static readonly byte[][] Leaves =
        [.. new[] { "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f" }.Select(Convert.FromHexString)];

    private static readonly string[] Roots =
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    [Fact]
    public void Roots_are_rfc6962s_for_one_to_eight_leaves()
    {
        for (var n = 1; n <= Leaves.Length; n++)
            Assert.Equal(Roots[n - 1], Convert.ToHexStringLower(MerkleTree.Root(Leaves[..n])));
    }

    [Theory]
    [InlineData(0, 8, new[] { "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" })]
    [InlineData(5, 8, new[] { "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" })]
    [InlineData(2, 3, new[] { "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125" })]
    [InlineData(1, 5, new[] { "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" })]
    [InlineData(0, 1, new string[0])]
    public void Proofs_are_rfc6962s_audit_paths(int index, int count, string[] path)
    {
        var proof = MerkleTree.Proof(Leaves[..count], index);

        Assert.Equal(path, proof.Select(Convert.ToHexStringLower));
        Assert.True(MerkleTree.Verify(Leaves[index], index, count, proof, Convert.FromHexString(Roots[count - 1])));
    }

    [Fact]
    public void Every_leaf_of_every_tree_up_to_40_leaves_proves_and_tampering_fails()
    {
        for (var n = 1; n <= 40; n++)
        {
            var leaves = Enumerable.Range(0, n).Select(i => new[] { (byte)i, (byte)(i * 7) }).ToArray();
            var root = MerkleTree.Root(leaves);
            for (var i = 0; i < n; i++)
            {
                var proof = MerkleTree.Proof(leaves, i);
                Assert.True(MerkleTree.Verify(leaves[i], i, n, proof, root), $"n = {n}, leaf {i}");
                Assert.False(MerkleTree.Verify([.. leaves[i], 0], i, n, proof, root), $"n = {n}, leaf {i}: other data");
                if (n > 1)
                {
                    Assert.False(MerkleTree.Verify(leaves[i], (i + 1) % n, n, proof, root), $"n = {n}, leaf {i}: other index");
                    Assert.False(MerkleTree.Verify(leaves[i], i, n, proof.Skip(1).ToArray(), root), $"n = {n}, leaf {i}: short proof");
                    Assert.False(MerkleTree.Verify(leaves[i], i, n, [.. proof, proof[0]], root), $"n = {n}, leaf {i}: long proof");
                    var flipped = proof.Select(h => h.ToArray()).ToArray();
                    flipped[^1][0] ^= 1;
                    Assert.False(MerkleTree.Verify(leaves[i], i, n, flipped, root), $"n = {n}, leaf {i}: a flipped bit");
                }
            }
        }
    }

    [Fact]
    public void A_leaf_cannot_pass_for_an_inner_node()
    {
        // The two children's hashes as one leaf's data: without the 0x00/0x01 prefixes it would hash to the root.
        var root = MerkleTree.Root(Leaves[..2]);
        var forged = MerkleTree.LeafHash(Leaves[0]).Concat(MerkleTree.LeafHash(Leaves[1])).ToArray();

        Assert.NotEqual(root, MerkleTree.Root([forged]));
        Assert.False(MerkleTree.Verify(forged, 0, 1, [], root));
    }
}

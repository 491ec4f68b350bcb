using MLNode.Protocol.Poc;
using Xunit;

namespace MLNode.Protocol.Tests.Poc;

public class Murmur3Tests
{
    [Theory]
    [InlineData("murmur")]
    [InlineData("murmur_edge")]
    public void Mix_MatchesRecordedHashes(string fixture)
    {
        var recorded = PocFixtures.Primitives.GetProperty(fixture);
        var seed = recorded.GetProperty("seed").GetUInt32();
        // Keys are int32 in the reference (torch.arange); negative ones hash as their two's complement.
        var keys = recorded.GetProperty("keys").Longs();
        var hashes = recorded.GetProperty("hash").UInts();
        Assert.Equal(keys.Length, hashes.Length);
        for (var i = 0; i < keys.Length; i++)
            Assert.True(hashes[i] == Murmur3.Mix(unchecked((uint)keys[i]), seed), $"mix({keys[i]}, {seed})");
    }

    // Spec §3.1.3: mix(i, seed32("TEST_BLOCK_test_pub_keys_nonce0")) for i = 0..3.
    [Fact]
    public void Mix_SpecTestVector()
    {
        uint[] expected = [1838284147, 1263909213, 1169763974, 2162981214];
        Assert.Equal(expected, Enumerable.Range(0, 4).Select(i => Murmur3.Mix((uint)i, 1589641989)).ToArray());
    }

    [Fact]
    public void Mix_DiffersFromStockMurmur3()
    {
        // Stock MurmurHash3_x86_32 of the 4-byte little-endian key 0 with seed 0 is 0x2362F9DE (mmh3.hash of
        // four zero bytes); without `h ^= len` it is 0xFF19274A (same Python code minus that line).
        Assert.Equal(0xFF19274Au, Murmur3.Mix(0, 0));
    }
}

using MLNode.Protocol.Poc;
using Xunit;

namespace MLNode.Protocol.Tests.Poc;

public class WanPocInputsTests
{
    private static readonly int[] WanPatch = [1, 2, 2];

    // docs/wan-poc.md §6, computed independently with Python's hashlib.
    [Theory]
    [InlineData(0L, 0x3f50a6dbu)]
    [InlineData(1L, 0xc1ae8795u)]
    [InlineData(2L, 0x46c9f64eu)]
    [InlineData(7L, 0x38254d9au)]
    [InlineData(1000L, 0x3db490b1u)]
    public void LatentSeed_MatchesTheSpecTestVectors(long nonce, uint seed) =>
        Assert.Equal(seed, WanPocSeeds.Latent("TEST_BLOCK", "test_pub_keys", nonce));

    [Fact]
    public void T2VA14B_SeqLen1024_IsFourLatentFramesOf256Tokens()
    {
        Assert.Equal(256, WanPocGeometry.T2VA14B.TokensPerFrame(WanPatch));
        Assert.Equal(4, WanPocGeometry.T2VA14B.LatentFrames(1024, WanPatch));
        Assert.Equal(512, WanPocGeometry.T2VA14B.TextLength);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1000)]
    public void LatentFrames_RefusesASeqLenThatIsNotWholeFrames(int seqLen) =>
        Assert.Throws<ArgumentException>(() => WanPocGeometry.T2VA14B.LatentFrames(seqLen, WanPatch));

    [Fact]
    public void TokensPerFrame_RefusesAFrameThatIsNotWholePatches() =>
        Assert.Throws<ArgumentException>(() => new WanPocGeometry(9, 8, 16).TokensPerFrame(WanPatch));
}

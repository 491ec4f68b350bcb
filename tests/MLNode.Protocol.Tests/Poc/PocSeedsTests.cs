using MLNode.Protocol.Poc;
using Xunit;

namespace MLNode.Protocol.Tests.Poc;

public class PocSeedsTests
{
    private const string TestBlock = "TEST_BLOCK";
    private const string TestKey = "test_pub_keys";

    [Fact]
    public void Seed32_MatchesEveryRecordedString()
    {
        var cases = PocFixtures.Primitives.GetProperty("seed32").EnumerateObject().ToArray();
        Assert.NotEmpty(cases);
        foreach (var recorded in cases)
            Assert.True(recorded.Value.GetUInt32() == PocSeeds.Seed32(recorded.Name), $"seed32(\"{recorded.Name}\")");
    }

    [Fact]
    public void NamedSeeds_FormatTheRecordedStrings()
    {
        var seeds = PocFixtures.Primitives.GetProperty("seed32");
        var weak = PocFixtures.Primitives.GetProperty("inputs_weak");
        var blockHash = weak.GetProperty("block_hash").GetString()!;
        var publicKey = weak.GetProperty("public_key").GetString()!;

        Assert.Equal(seeds.GetProperty($"{blockHash}_{publicKey}_nonce0").GetUInt32(), PocSeeds.Input(blockHash, publicKey, 0));
        Assert.Equal(seeds.GetProperty($"{blockHash}_layer_0_householder").GetUInt32(), PocSeeds.Layer(blockHash, 0));
        Assert.Equal(seeds.GetProperty($"{blockHash}_{publicKey}_nonce_0_pick_12").GetUInt32(), PocSeeds.Pick(blockHash, publicKey, 0, 12));
        Assert.Equal(seeds.GetProperty($"{blockHash}_{publicKey}_nonce_0_haar_hh_12_0").GetUInt32(), PocSeeds.HaarStep(blockHash, publicKey, 0, 12, 0));
    }

    // Spec §3.1.3 test vectors.
    [Fact]
    public void SpecTestVectors()
    {
        Assert.Equal(1589641989u, PocSeeds.Seed32("TEST_BLOCK_test_pub_keys_nonce0"));
        Assert.Equal(1589641989u, PocSeeds.Input(TestBlock, TestKey, 0));
        Assert.Equal(2284659359u, PocSeeds.Layer(TestBlock, 0));
        Assert.Equal(2826662626u, PocSeeds.Pick(TestBlock, TestKey, 0, 12));
        Assert.Equal(1775486364u, PocSeeds.HaarStep(TestBlock, TestKey, 0, 12, 0));

        var subSeeds = new uint[PocSeeds.StrongSubSeedCount];
        PocSeeds.StrongInput(TestBlock, TestKey, 0, subSeeds);
        Assert.Equal([1589641989u, 1811054632u, 2092028337u, 1372497962u, 2845890790u, 282738888u, 1675009164u, 1960591446u], subSeeds);
    }

    [Fact]
    public void StrongInput_FirstSubSeedIsTheWeakSeed()
    {
        var subSeeds = new uint[PocSeeds.StrongSubSeedCount];
        PocSeeds.StrongInput(TestBlock, TestKey, 41, subSeeds);
        Assert.Equal(PocSeeds.Input(TestBlock, TestKey, 41), subSeeds[0]);
    }

    [Fact]
    public void StrongInput_RejectsAWrongSizedBuffer() =>
        Assert.Throws<ArgumentException>(() => PocSeeds.StrongInput(TestBlock, TestKey, 0, new uint[7]));

    [Fact]
    public void Seed32_HashesLongStringsToo()
    {
        // Past the stack buffer: "a"×1000 → SHA-256 starts 41edece4 (python3: hashlib.sha256(b"a"*1000).hexdigest()[:8]).
        Assert.Equal(0x41edece4u, PocSeeds.Seed32(new string('a', 1000)));
    }
}

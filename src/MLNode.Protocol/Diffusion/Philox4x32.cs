namespace MLNode.Protocol.Diffusion;

/// <summary>Four 32-bit words: a Philox counter or one output block.</summary>
public readonly record struct PhiloxWords(uint X, uint Y, uint Z, uint W);

/// <summary>
/// The Philox4x32-10 block function (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011):
/// ten rounds of two 32×32→64-bit multiplications keyed by a Weyl sequence. Output block i of a stream is a
/// pure function of (counter, key), so any block can be computed on its own, on any device, with the same bits.
/// </summary>
/// <remarks>
/// Word order and the key bump between rounds follow cuRAND's <c>curand_Philox4x32_10</c>, which is also the
/// order of the Random123 known-answer vectors.
/// </remarks>
public static class Philox4x32
{
    private const uint Multiplier0 = 0xD2511F53;
    private const uint Multiplier1 = 0xCD9E8D57;
    private const uint Weyl0 = 0x9E3779B9; // golden ratio
    private const uint Weyl1 = 0xBB67AE85; // √3 − 1
    private const int Rounds = 10;

    public static PhiloxWords Block(PhiloxWords counter, uint key0, uint key1)
    {
        for (var round = 0; round < Rounds; round++)
        {
            counter = Round(counter, key0, key1);
            key0 += Weyl0;
            key1 += Weyl1;
        }
        return counter;
    }

    private static PhiloxWords Round(PhiloxWords c, uint key0, uint key1)
    {
        var product0 = (ulong)Multiplier0 * c.X;
        var product1 = (ulong)Multiplier1 * c.Z;
        return new PhiloxWords(
            (uint)(product1 >> 32) ^ c.Y ^ key0,
            (uint)product1,
            (uint)(product0 >> 32) ^ c.W ^ key1,
            (uint)product0);
    }
}

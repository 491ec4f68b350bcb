using System.Numerics;

namespace MLNode.Protocol.Poc;

/// <summary>
/// The PoC hash: the MurmurHash3 x86_32 body for a single 32-bit block followed by the finaliser, but
/// without the <c>h ^= length</c> step, so a stock MurmurHash3 gives different values.
/// </summary>
/// <remarks>
/// For a fixed seed every step is invertible in the key (odd multiplications, rotations, xor with a
/// constant, xorshifts), so distinct keys never collide: seeded scores over 0..d−1 have no ties.
/// </remarks>
public static class Murmur3
{
    public static uint Mix(uint key, uint seed)
    {
        var k = key * 0xCC9E2D51u;
        k = BitOperations.RotateLeft(k, 15);
        k *= 0x1B873593u;

        var h = seed ^ k;
        h = BitOperations.RotateLeft(h, 13);
        h = h * 5 + 0xE6546B64u;

        h ^= h >> 16;
        h *= 0x85EBCA6Bu;
        h ^= h >> 13;
        h *= 0xC2B2AE35u;
        h ^= h >> 16;
        return h;
    }
}

using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using MLNode.Protocol.Poc;

namespace MLNode.Protocol.Diffusion;

/// <summary>
/// Which denoising steps a public beacon challenges, decided only by the beacon and the committed Merkle root so that
/// neither side can steer it once the commitment is posted (dit-wan22.md §5.6 (C) V1.2). With
/// seed = SHA-256(UTF-8(beacon) ‖ root), draw i is the first 8 bytes (u64 LE) of SHA-256(seed ‖ u32 LE i), turned into a
/// uniform index below n by rejecting the 2^64 mod n smallest values. When both experts ran and at least two steps are
/// asked for, the first draw picks among the high-noise steps and the second among the low-noise ones; every further
/// draw picks among the steps not yet chosen (ascending order). The result is sorted.
/// </summary>
public static class StepChallenges
{
    /// <param name="experts">The expert of each step (<see cref="WanRouting.HighNoiseExpert"/> or <see cref="WanRouting.LowNoiseExpert"/>): the records' <c>expert</c>.</param>
    /// <param name="count">How many steps to challenge, 1 to the number of steps.</param>
    public static IReadOnlyList<int> Select(string beacon, ReadOnlySpan<byte> merkleRoot, IReadOnlyList<int> experts, int count)
    {
        ArgumentNullException.ThrowIfNull(beacon);
        ArgumentNullException.ThrowIfNull(experts);
        if (merkleRoot.Length != MerkleTree.HashBytes) throw new ArgumentException($"a Merkle root is {MerkleTree.HashBytes} bytes", nameof(merkleRoot));
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, experts.Count);

        var draws = new Draws(SHA256.HashData([.. Encoding.UTF8.GetBytes(beacon), .. merkleRoot]));
        var chosen = new SortedSet<int>();
        var high = Enumerable.Range(0, experts.Count).Where(k => experts[k] == WanRouting.HighNoiseExpert).ToArray();
        var low = Enumerable.Range(0, experts.Count).Where(k => experts[k] == WanRouting.LowNoiseExpert).ToArray();
        if (count >= 2 && high.Length > 0 && low.Length > 0)
        {
            chosen.Add(high[draws.Below(high.Length)]);
            chosen.Add(low[draws.Below(low.Length)]);
        }
        while (chosen.Count < count)
        {
            var rest = Enumerable.Range(0, experts.Count).Where(k => !chosen.Contains(k)).ToArray();
            chosen.Add(rest[draws.Below(rest.Length)]);
        }
        return [.. chosen];
    }

    private sealed class Draws(byte[] seed)
    {
        private uint _next;

        public int Below(int n)
        {
            // 2^64 mod n: dropping the values below it leaves a whole number of copies of 0..n−1.
            var rejectBelow = (0UL - (ulong)n) % (ulong)n;
            while (true)
            {
                var block = new byte[seed.Length + sizeof(uint)];
                seed.CopyTo(block, 0);
                BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(seed.Length), _next++);
                var value = BinaryPrimitives.ReadUInt64LittleEndian(SHA256.HashData(block));
                if (value >= rejectBelow) return (int)(value % (ulong)n);
            }
        }
    }
}

namespace MLNode.Protocol.Poc;

/// <summary>
/// Which k of the d hidden dimensions enter nonce n's artifact, and in which order: the dimensions with the
/// k smallest scores <c>mix(j, seed32("{BH}_{PK}_nonce_{n}_pick_{k}"))</c>.
/// </summary>
/// <remarks>
/// The reference takes <c>torch.topk(-score, k, sorted=False)</c> on CUDA, whose order decides which dimension
/// enters which slot of the Haar rotation. On every recorded case it is: the k−1 dimensions with the smallest
/// scores in ascending index order, then the dimension holding the k-th smallest score (the selection
/// boundary). Only 38 of the 393 recorded cases happen to be fully ascending, so sorting all k would be wrong.
/// Scores never tie (<see cref="Murmur3"/> is a bijection in the key), so the order is well defined.
/// </remarks>
public static class DimensionPick
{
    /// <summary>The <see cref="PocRound.KDim"/> picked dimensions of nonce <paramref name="nonce"/>, in the reference order.</summary>
    public static int[] Indices(PocRound round, long nonce)
    {
        ArgumentNullException.ThrowIfNull(round);
        var k = round.KDim;
        var seed = PocSeeds.Pick(round.BlockHash, round.PublicKey, nonce, k);

        // The k smallest (score, index) pairs so far, ascending by score.
        var scores = new uint[k];
        var indices = new int[k];
        var held = 0;
        for (var j = 0; j < round.HiddenSize; j++)
        {
            var score = Murmur3.Mix((uint)j, seed);
            if (held == k && score >= scores[k - 1])
                continue;
            var slot = held < k ? held++ : k - 1;
            for (; slot > 0 && scores[slot - 1] > score; slot--)
            {
                scores[slot] = scores[slot - 1];
                indices[slot] = indices[slot - 1];
            }
            scores[slot] = score;
            indices[slot] = j;
        }

        Array.Sort(indices, 0, k - 1);
        return indices;
    }
}

namespace MLNode.Protocol.Poc;

/// <summary>
/// The input embeddings X_n (L×d, row-major, float32) that replace the token embeddings for nonce n.
/// </summary>
/// <remarks>
/// Weak RNG: one <c>normal(seed32("{BH}_{PK}_nonce{n}"), L·d)</c> stream. Stronger RNG: the eight 32-bit words
/// of SHA-256 of the same string each seed one segment of S = ceil(L·d/8) values (the last segment shorter),
/// every segment a normal stream of its own length. Values are float32; casting to the activation dtype is
/// the caller's business.
/// </remarks>
public static class PocInputs
{
    // Pairs per parallel work item: large enough to amortise scheduling, small enough to balance a batch of
    // 32 × 1024 × 4096 values over many cores. The split never changes a value (see PocRandom).
    private const int PairsPerChunk = 1 << 15;

    /// <summary>Fills <paramref name="destination"/> (length L·d) with nonce <paramref name="nonce"/>'s inputs.</summary>
    public static void Fill(PocRound round, long nonce, Span<float> destination) =>
        FillBatch(round, [nonce], destination);

    /// <summary>
    /// Fills <paramref name="destination"/> (length nonces·L·d, nonce-major) with the inputs of every nonce,
    /// e.g. straight into a batch buffer; the work is spread over the thread pool.
    /// </summary>
    public static unsafe void FillBatch(PocRound round, ReadOnlySpan<long> nonces, Span<float> destination)
    {
        ArgumentNullException.ThrowIfNull(round);
        var perNonce = round.InputLength;
        if (destination.Length != (long)nonces.Length * perNonce)
            throw new ArgumentException(
                $"destination holds {destination.Length} floats, {nonces.Length} nonces × {round.SeqLen} × {round.HiddenSize} need {(long)nonces.Length * perNonce}",
                nameof(destination));

        var chunks = Plan(round, nonces);
        fixed (float* start = destination)
        {
            // A span cannot cross into the parallel lambda; the buffer stays pinned until Parallel.For returns.
            var address = (nint)start;
            Parallel.For(0, chunks.Length, c =>
            {
                var chunk = chunks[c];
                var stream = new Span<float>((float*)address + chunk.Offset, chunk.Length);
                PocRandom.FillNormalPairs(chunk.Seed, stream, chunk.FirstPair, chunk.EndPair);
            });
        }
    }

    /// <summary>
    /// The seeds of every nonce's normal streams, nonce-major: one per nonce (weak RNG) or its
    /// <see cref="PocSeeds.StrongSubSeedCount"/> sub-seeds (stronger RNG). The native kernel takes these.
    /// </summary>
    public static uint[] Seeds(PocRound round, ReadOnlySpan<long> nonces)
    {
        ArgumentNullException.ThrowIfNull(round);
        var perNonce = StreamsPerNonce(round);
        var seeds = new uint[nonces.Length * perNonce];
        for (var i = 0; i < nonces.Length; i++)
        {
            if (round.StrongRng)
                PocSeeds.StrongInput(round.BlockHash, round.PublicKey, nonces[i], seeds.AsSpan(i * perNonce, perNonce));
            else
                seeds[i] = PocSeeds.Input(round.BlockHash, round.PublicKey, nonces[i]);
        }
        return seeds;
    }

    private static int StreamsPerNonce(PocRound round) => round.StrongRng ? PocSeeds.StrongSubSeedCount : 1;

    /// <summary>A range of pairs of one normal stream that starts at <see cref="Offset"/> of the batch.</summary>
    private readonly record struct Chunk(uint Seed, long Offset, int Length, int FirstPair, int EndPair);

    private static Chunk[] Plan(PocRound round, ReadOnlySpan<long> nonces)
    {
        // Each nonce's values are its streams one after the other: one of L·d values, or segments of
        // ceil(L·d/8) values (the last shorter, empty ones skipped).
        var total = round.InputLength;
        var streams = StreamsPerNonce(round);
        var segment = (int)(((long)total + streams - 1) / streams);
        var seeds = Seeds(round, nonces);
        var chunks = new List<Chunk>();
        for (var i = 0; i < nonces.Length; i++)
        {
            for (var j = 0; j < streams && j * segment < total; j++)
                AddStream(chunks, seeds[i * streams + j], (long)i * total + (long)j * segment, Math.Min(segment, total - j * segment));
        }
        return [.. chunks];
    }

    private static void AddStream(List<Chunk> chunks, uint seed, long offset, int length)
    {
        var pairs = PocRandom.PairCount(length);
        for (var first = 0; first < pairs; first += PairsPerChunk)
            chunks.Add(new Chunk(seed, offset, length, first, Math.Min(first + PairsPerChunk, pairs)));
    }
}

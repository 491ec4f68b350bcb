namespace MLNode.Protocol.Poc;

/// <summary>
/// The part of a Wan PoC nonce's input shape that the model config does not fix (docs/wan-poc.md §2): the latent
/// frame's height and width in latent cells and the text context's length. The round's <c>seq_len</c> counts video
/// tokens, so a nonce's latent holds <c>seq_len</c> / (tokens per latent frame) frames.
/// </summary>
/// <param name="LatentHeight">Latent rows per frame (a multiple of the patch height).</param>
/// <param name="LatentWidth">Latent columns per frame (a multiple of the patch width).</param>
/// <param name="TextLength">Rows of the seeded text context, as many as the pipeline pads a prompt to.</param>
public sealed record WanPocGeometry(int LatentHeight, int LatentWidth, int TextLength)
{
    /// <summary>
    /// Wan2.2-T2V-A14B: 32×32 latent cells per frame (a 256×256 video frame, 16×16 = 256 tokens) and the pipeline's
    /// 512 context rows; <c>seq_len</c> 1024 gives 4 latent frames.
    /// </summary>
    public static WanPocGeometry T2VA14B { get; } = new(32, 32, 512);

    public int LatentHeight { get; } = LatentHeight > 0 ? LatentHeight : throw new ArgumentOutOfRangeException(nameof(LatentHeight), LatentHeight, "must be positive");
    public int LatentWidth { get; } = LatentWidth > 0 ? LatentWidth : throw new ArgumentOutOfRangeException(nameof(LatentWidth), LatentWidth, "must be positive");
    public int TextLength { get; } = TextLength > 0 ? TextLength : throw new ArgumentOutOfRangeException(nameof(TextLength), TextLength, "must be positive");

    /// <summary>Video tokens of one latent frame for a (time, height, width) patch.</summary>
    public int TokensPerFrame(IReadOnlyList<int> patchSize)
    {
        ArgumentNullException.ThrowIfNull(patchSize);
        if (LatentHeight % patchSize[1] != 0 || LatentWidth % patchSize[2] != 0)
            throw new ArgumentException($"a {LatentHeight}×{LatentWidth} latent frame is not a whole number of {patchSize[1]}×{patchSize[2]} patches", nameof(patchSize));
        return LatentHeight / patchSize[1] * (LatentWidth / patchSize[2]);
    }

    /// <summary>Latent frames of a nonce whose latent has <paramref name="seqLen"/> tokens.</summary>
    public int LatentFrames(int seqLen, IReadOnlyList<int> patchSize)
    {
        ArgumentNullException.ThrowIfNull(patchSize);
        var perFrame = TokensPerFrame(patchSize);
        if (seqLen <= 0 || seqLen % perFrame != 0)
            throw new ArgumentException($"seq_len {seqLen} is not a positive multiple of the {perFrame} tokens of a latent frame", nameof(seqLen));
        return seqLen / perFrame * patchSize[0];
    }
}

/// <summary>
/// Seeds of a Wan PoC nonce's inputs beyond PoC v2's (docs/wan-poc.md §2). The text context is PoC v2's own input
/// stream (<see cref="PocInputs"/>, <c>seed32("{BH}_{PK}_nonce{n}")</c>); the timestep is <see cref="WanRouting.Seed"/>.
/// </summary>
public static class WanPocSeeds
{
    /// <summary><c>seed32("{BH}_{PK}_nonce_{n}_wan_latent")</c>: the Philox seed of nonce n's initial latent.</summary>
    public static uint Latent(string blockHash, string publicKey, long nonce) =>
        PocSeeds.Seed32(FormattableString.Invariant($"{blockHash}_{publicKey}_nonce_{nonce}_wan_latent"));
}

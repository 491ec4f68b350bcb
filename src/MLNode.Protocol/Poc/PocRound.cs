namespace MLNode.Protocol.Poc;

/// <summary>
/// The parameters every participant of one PoC v2 round shares: the seeds come from the block hash and the
/// key of the participant whose nonces are computed (the validated one's key when validating).
/// </summary>
/// <param name="BlockHash">Block hash string exactly as received (seeds hash its UTF-8 text).</param>
/// <param name="PublicKey">Public key string exactly as received.</param>
/// <param name="SeqLen">Tokens per nonce (L).</param>
/// <param name="HiddenSize">Model hidden size (d).</param>
/// <param name="KDim">Artifact length (k dimensions picked out of d).</param>
/// <param name="StrongRng"><c>poc_stronger_rng</c>: inputs from eight SHA-256 sub-seeds instead of one.</param>
public sealed record PocRound(
    string BlockHash,
    string PublicKey,
    int SeqLen,
    int HiddenSize,
    int KDim = PocRound.DefaultKDim,
    bool StrongRng = false)
{
    public const int DefaultKDim = 12;

    public string BlockHash { get; } = BlockHash ?? throw new ArgumentNullException(nameof(BlockHash));
    public string PublicKey { get; } = PublicKey ?? throw new ArgumentNullException(nameof(PublicKey));
    public int SeqLen { get; } = SeqLen > 0 ? SeqLen : throw new ArgumentOutOfRangeException(nameof(SeqLen), SeqLen, "must be positive");
    public int HiddenSize { get; } = HiddenSize > 0 ? HiddenSize : throw new ArgumentOutOfRangeException(nameof(HiddenSize), HiddenSize, "must be positive");
    public int KDim { get; } = KDim >= 1 && KDim <= HiddenSize
        ? KDim
        : throw new ArgumentOutOfRangeException(nameof(KDim), KDim, $"must be in [1, {HiddenSize}]");

    /// <summary>Floats of one nonce's input embeddings (L·d).</summary>
    public int InputLength => checked(SeqLen * HiddenSize);
}

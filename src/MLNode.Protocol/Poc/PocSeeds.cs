using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace MLNode.Protocol.Poc;

/// <summary>
/// Every seed of the PoC v2 protocol: <c>seed32(s)</c> = first four bytes of SHA-256(UTF-8 s), big-endian,
/// applied to the exact strings the reference formats.
/// </summary>
/// <remarks>
/// Inputs use <c>…_nonce{n}</c> while pick and Haar use <c>…_nonce_{n}_…</c> (with an underscore): both
/// spellings are the reference's and must stay as they are. Numbers are formatted invariantly, as Python
/// prints them.
/// </remarks>
public static class PocSeeds
{
    /// <summary>Sub-seeds of the stronger input RNG: the whole 256-bit digest cut into eight words.</summary>
    public const int StrongSubSeedCount = SHA256.HashSizeInBytes / sizeof(uint);

    // Seed strings are block hash + key + a few digits; longer ones go to the heap rather than the stack.
    private const int StackUtf8Limit = 512;

    public static uint Seed32(string text)
    {
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        Sha256(text, digest);
        return BinaryPrimitives.ReadUInt32BigEndian(digest);
    }

    /// <summary>Seed of nonce <paramref name="nonce"/>'s input embeddings (weak RNG).</summary>
    public static uint Input(string blockHash, string publicKey, long nonce) =>
        Seed32(InputText(blockHash, publicKey, nonce));

    /// <summary>The eight sub-seeds of nonce <paramref name="nonce"/>'s input embeddings (<c>poc_stronger_rng</c>).</summary>
    public static void StrongInput(string blockHash, string publicKey, long nonce, Span<uint> subSeeds)
    {
        if (subSeeds.Length != StrongSubSeedCount)
            throw new ArgumentException($"needs exactly {StrongSubSeedCount} sub-seeds, got {subSeeds.Length}", nameof(subSeeds));
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        Sha256(InputText(blockHash, publicKey, nonce), digest);
        for (var j = 0; j < StrongSubSeedCount; j++)
            subSeeds[j] = BinaryPrimitives.ReadUInt32BigEndian(digest[(j * sizeof(uint))..]);
    }

    /// <summary>Seed of decoder layer <paramref name="layer"/>'s Householder vector; depends on the block hash only.</summary>
    public static uint Layer(string blockHash, int layer) =>
        Seed32(FormattableString.Invariant($"{blockHash}_layer_{layer}_householder"));

    /// <summary>Seed of the hash scores that pick <paramref name="k"/> of the d hidden dimensions.</summary>
    public static uint Pick(string blockHash, string publicKey, long nonce, int k) =>
        Seed32(FormattableString.Invariant($"{blockHash}_{publicKey}_nonce_{nonce}_pick_{k}"));

    /// <summary>Seed of Householder step <paramref name="step"/> (0..k−2) of the Haar rotation.</summary>
    public static uint HaarStep(string blockHash, string publicKey, long nonce, int k, int step) =>
        Seed32(FormattableString.Invariant($"{blockHash}_{publicKey}_nonce_{nonce}_haar_hh_{k}_{step}"));

    private static string InputText(string blockHash, string publicKey, long nonce) =>
        FormattableString.Invariant($"{blockHash}_{publicKey}_nonce{nonce}");

    private static void Sha256(string text, Span<byte> digest)
    {
        var byteCount = Encoding.UTF8.GetByteCount(text);
        var utf8 = byteCount <= StackUtf8Limit ? stackalloc byte[byteCount] : new byte[byteCount];
        Encoding.UTF8.GetBytes(text, utf8);
        SHA256.HashData(utf8, digest);
    }
}

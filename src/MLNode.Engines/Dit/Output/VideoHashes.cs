using System.Security.Cryptography;

namespace MLNode.Engines.Dit.Output;

/// <summary>
/// A video's identities: SHA-256 of its canonical frames (the uint8 [F, H, W, 3] bytes, which any honest re-encode of
/// the same frames keeps) and of the MP4 the worker served (which depends on the encoder build), and per frame a
/// 64-bit pHash and dHash (lowercase hex) for perceptual comparison when the frames differ by a few levels.
/// </summary>
public sealed record VideoHashes(string FramesSha256, string? Mp4Sha256, IReadOnlyList<string> PHashes, IReadOnlyList<string> DHashes)
{
    public static VideoHashes Of(WanVideo video, byte[]? mp4)
    {
        ArgumentNullException.ThrowIfNull(video);
        var pHashes = new string[video.FrameCount];
        var dHashes = new string[video.FrameCount];
        for (var f = 0; f < video.FrameCount; f++)
        {
            var luma = PerceptualHash.Luma(video.Frames.AsSpan(f * video.FrameBytes, video.FrameBytes), video.Height, video.Width);
            pHashes[f] = PerceptualHash.Hex(PerceptualHash.PHash(luma, video.Height, video.Width));
            dHashes[f] = PerceptualHash.Hex(PerceptualHash.DHash(luma, video.Height, video.Width));
        }
        return new VideoHashes(Sha256(video.Frames), mp4 is null ? null : Sha256(mp4), pHashes, dHashes);
    }

    private static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}

using System.IO.Compression;
using System.Text;

namespace MLNode.Engines.Asr;

/// <summary>How repetitive a transcript is, as openai-whisper and vLLM report it for a segment.</summary>
public static class TextCompression
{
    /// <summary>len(utf8) / len(zlib.compress(utf8)) at zlib's default level; 0 for empty text.</summary>
    public static double Ratio(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        using var compressed = new MemoryStream();
        using (var zlib = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
            zlib.Write(bytes);
        return bytes.Length / (double)compressed.Length;
    }
}

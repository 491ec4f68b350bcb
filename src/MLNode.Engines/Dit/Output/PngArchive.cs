using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace MLNode.Engines.Dit.Output;

/// <summary>
/// The frames as a zip of 8-bit RGB PNGs (<c>frame_00000.png</c>, …): lossless, and byte-stable for one runtime (fixed
/// entry times, no filters, zlib at its default level).
/// </summary>
public static class PngArchive
{
    private static readonly DateTimeOffset EntryTime = new(1980, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];
    private static readonly uint[] CrcTable = MakeCrcTable();

    public static byte[] Zip(WanVideo video)
    {
        ArgumentNullException.ThrowIfNull(video);
        using var archive = new MemoryStream();
        using (var zip = new ZipArchive(archive, ZipArchiveMode.Create, leaveOpen: true))
        {
            for (var f = 0; f < video.FrameCount; f++)
            {
                var entry = zip.CreateEntry($"frame_{f:D5}.png", CompressionLevel.NoCompression);
                entry.LastWriteTime = EntryTime;
                using var stream = entry.Open();
                stream.Write(Png(video.Frames.AsSpan(f * video.FrameBytes, video.FrameBytes), video.Height, video.Width));
            }
        }
        return archive.ToArray();
    }

    /// <summary>One RGB frame [H, W, 3] as a PNG: IHDR (8-bit truecolour), one IDAT of filter-0 scanlines, IEND.</summary>
    public static byte[] Png(ReadOnlySpan<byte> rgb, int height, int width)
    {
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = 8; // bit depth
        header[9] = 2; // colour type: truecolour

        using var pixels = new MemoryStream();
        using (var zlib = new ZLibStream(pixels, CompressionLevel.Optimal, leaveOpen: true))
        {
            var row = width * 3;
            for (var y = 0; y < height; y++)
            {
                zlib.WriteByte(0);
                zlib.Write(rgb.Slice(y * row, row));
            }
        }

        using var png = new MemoryStream();
        png.Write(Signature);
        Chunk(png, "IHDR", header);
        Chunk(png, "IDAT", pixels.ToArray());
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void Chunk(Stream png, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        png.Write(word);
        var typeBytes = Encoding.ASCII.GetBytes(type);
        png.Write(typeBytes);
        png.Write(data);
        var crc = Crc(Crc(0xFFFFFFFFu, typeBytes), data) ^ 0xFFFFFFFFu;
        BinaryPrimitives.WriteUInt32BigEndian(word, crc);
        png.Write(word);
    }

    private static uint Crc(uint crc, ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes) crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc;
    }

    private static uint[] MakeCrcTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            var c = n;
            for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        return table;
    }
}

using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace MLNode.Engines.Dit.Output;

/// <summary>
/// The frames as a zip of 8-bit RGB PNGs (<c>frame_00000.png</c>, …): lossless, and byte-stable for one runtime (fixed
/// entry times, no filters, zlib at its default level). <see cref="Decode"/> reads such PNGs back, and those of any
/// encoder that writes 8-bit RGB without interlacing (any scanline filters, IDAT split anywhere).
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
                var entry = zip.CreateEntry(EntryName(f), CompressionLevel.NoCompression);
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

    /// <summary>The name of frame <paramref name="index"/> in the zip.</summary>
    public static string EntryName(int index) => $"frame_{index:D5}.png";

    /// <summary>The width and height an 8-bit RGB PNG declares in its IHDR, read without decoding it.</summary>
    public static (int Height, int Width) Size(ReadOnlySpan<byte> png)
    {
        var header = ReadHeader(png);
        return (header.Height, header.Width);
    }

    /// <summary>
    /// One 8-bit RGB (colour type 2), non-interlaced PNG as its [H, W, 3] bytes. Chunk CRCs are checked; a PNG of
    /// another kind, or whose pixel data is longer or shorter than its size, raises <see cref="InvalidDataException"/>.
    /// </summary>
    public static byte[] Decode(ReadOnlySpan<byte> png, out int height, out int width)
    {
        var header = ReadHeader(png);
        (height, width) = (header.Height, header.Width);
        using var compressed = new MemoryStream();
        var at = Signature.Length;
        while (true)
        {
            var (type, data, next) = NextChunk(png, at);
            if (type == "IEND") break;
            if (type == "IDAT") compressed.Write(png[data]);
            else if (char.IsUpper(type[0]) && type is not ("IHDR" or "PLTE"))
                throw new InvalidDataException($"critical chunk {type} is not supported");
            at = next;
        }

        if (((long)width * 3 + 1) * height > Array.MaxLength) throw new InvalidDataException($"a {width}×{height} frame is too large");
        var row = width * 3;
        var filtered = new byte[height * (row + 1)];
        compressed.Position = 0;
        using (var zlib = new ZLibStream(compressed, CompressionMode.Decompress))
        {
            try
            {
                zlib.ReadExactly(filtered);
                if (zlib.ReadByte() >= 0) throw new InvalidDataException($"the pixel data is longer than {width}×{height} RGB");
            }
            catch (EndOfStreamException)
            {
                throw new InvalidDataException($"the pixel data is shorter than {width}×{height} RGB");
            }
        }
        return Unfilter(filtered, height, row);
    }

    private sealed record Header(int Height, int Width);

    private static Header ReadHeader(ReadOnlySpan<byte> png)
    {
        if (!png.StartsWith(Signature)) throw new InvalidDataException("not a PNG: no PNG signature");
        var (type, range, _) = NextChunk(png, Signature.Length);
        var data = png[range];
        if (type != "IHDR" || data.Length != 13) throw new InvalidDataException("a PNG must start with a 13-byte IHDR chunk");
        var width = BinaryPrimitives.ReadInt32BigEndian(data);
        var height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
        if (width <= 0 || height <= 0) throw new InvalidDataException($"a PNG of {width}×{height} pixels");
        if (data[8] != 8 || data[9] != 2) throw new InvalidDataException($"only 8-bit RGB PNGs are frames (bit depth {data[8]}, colour type {data[9]})");
        if (data[10] != 0 || data[11] != 0 || data[12] != 0) throw new InvalidDataException("unknown compression or filter method, or interlacing");
        return new Header(height, width);
    }

    /// <summary>The chunk at <paramref name="at"/>: its type, where its data lies (CRC checked) and where the next one starts.</summary>
    private static (string Type, Range Data, int Next) NextChunk(ReadOnlySpan<byte> png, int at)
    {
        if (png.Length - at < 12) throw new InvalidDataException("the PNG ends inside a chunk header (no IEND)");
        var length = BinaryPrimitives.ReadInt32BigEndian(png[at..]);
        if (length < 0 || length > png.Length - at - 12) throw new InvalidDataException("a PNG chunk runs past the end of the file");
        var typeAndData = png.Slice(at + 4, 4 + length);
        var type = Encoding.ASCII.GetString(typeAndData[..4]);
        if ((Crc(0xFFFFFFFFu, typeAndData) ^ 0xFFFFFFFFu) != BinaryPrimitives.ReadUInt32BigEndian(png[(at + 8 + length)..]))
            throw new InvalidDataException($"PNG chunk {type} fails its CRC");
        return (type, new Range(at + 8, at + 8 + length), at + 12 + length);
    }

    /// <summary>Undoes the per-scanline filters of PNG (None, Sub, Up, Average, Paeth) for 3 bytes per pixel.</summary>
    private static byte[] Unfilter(byte[] filtered, int height, int row)
    {
        const int bpp = 3;
        var pixels = new byte[height * row];
        for (var y = 0; y < height; y++)
        {
            var filter = filtered[y * (row + 1)];
            var input = filtered.AsSpan(y * (row + 1) + 1, row);
            var line = pixels.AsSpan(y * row, row);
            ReadOnlySpan<byte> prior = y > 0 ? pixels.AsSpan((y - 1) * row, row) : new byte[row];
            for (var i = 0; i < row; i++)
            {
                int left = i >= bpp ? line[i - bpp] : 0, up = prior[i], upLeft = i >= bpp ? prior[i - bpp] : 0;
                line[i] = (byte)(input[i] + filter switch
                {
                    0 => 0,
                    1 => left,
                    2 => up,
                    3 => (left + up) >> 1,
                    4 => Paeth(left, up, upLeft),
                    _ => throw new InvalidDataException($"unknown PNG scanline filter {filter} in row {y}"),
                });
            }
        }
        return pixels;
    }

    private static int Paeth(int a, int b, int c)
    {
        var p = a + b - c;
        var (pa, pb, pc) = (Math.Abs(p - a), Math.Abs(p - b), Math.Abs(p - c));
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
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

using System.Buffers.Binary;

namespace MLNode.Tests;

/// <summary>
/// The samples of a 16-bit PCM mono WAV as float32 int16/32768 — what the fixtures' references were computed from —
/// read without FFmpeg so front-end tests do not depend on the decoder under test elsewhere.
/// </summary>
public static class WavSamples
{
    public static float[] Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 12 || BinaryPrimitives.ReadUInt32BigEndian(bytes) != 0x52494646 /* RIFF */)
            throw new InvalidDataException($"{path} is not a RIFF file");
        for (var at = 12; at + 8 <= bytes.Length;)
        {
            var id = System.Text.Encoding.ASCII.GetString(bytes, at, 4);
            var size = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 4));
            if (id == "fmt ")
            {
                var format = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(at + 8));
                var channels = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(at + 10));
                var bits = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(at + 22));
                if (format != 1 || channels != 1 || bits != 16)
                    throw new InvalidDataException($"{path}: only 16-bit PCM mono is read here (format {format}, {channels} channels, {bits} bits)");
            }
            else if (id == "data")
            {
                var data = bytes.AsSpan(at + 8, Math.Min(size, bytes.Length - at - 8));
                var samples = new float[data.Length / 2];
                for (var i = 0; i < samples.Length; i++)
                    samples[i] = BinaryPrimitives.ReadInt16LittleEndian(data[(2 * i)..]) / 32768f;
                return samples;
            }
            at += 8 + size + (size & 1);
        }
        throw new InvalidDataException($"{path} has no data chunk");
    }
}

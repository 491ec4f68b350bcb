using System.Buffers.Binary;
using System.Text.Json;
using MLNode.Protocol.Poc;

namespace MLNode.Protocol.Diffusion;

/// <summary>
/// One denoising step k of a committed trajectory (dit-wan22.md §5.6 (B) 3): the step, the integer timestep the model
/// saw, the expert (0 high noise, 1 low noise) and guidance scale it ran with, <see cref="Hash"/> h_k = SHA-256 of the
/// float32 little-endian bytes of the model input x̃_k followed by those of the sampler's x0 prediction m_k, and the
/// fp16 JL sketches s_k = JL(x̃_k) (<see cref="LatentSketch"/>) and u_k = JL(v_k) of the guided velocity
/// (<see cref="VelocitySketch"/>).
/// </summary>
public sealed class TrajectoryRecord
{
    public const int SketchDimension = 256;

    /// <summary>Bytes of <see cref="Encode"/>: u32 step, u32 timestep, u8 expert, f64 guidance, h_k, s_k, u_k.</summary>
    public const int EncodedBytes = 4 + 4 + 1 + 8 + MerkleTree.HashBytes + 2 * SketchDimension * 2;

    public TrajectoryRecord(int step, int timestep, int expert, double guidance, byte[] hash, Half[] latentSketch, Half[] velocitySketch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        ArgumentOutOfRangeException.ThrowIfNegative(timestep);
        if (expert is not (WanRouting.HighNoiseExpert or WanRouting.LowNoiseExpert)) throw new ArgumentOutOfRangeException(nameof(expert), expert, "the expert is 0 (high noise) or 1 (low noise)");
        if (!double.IsFinite(guidance)) throw new ArgumentOutOfRangeException(nameof(guidance), guidance, "must be finite");
        ArgumentNullException.ThrowIfNull(hash);
        if (hash.Length != MerkleTree.HashBytes) throw new ArgumentException($"h_k is a SHA-256 of {MerkleTree.HashBytes} bytes, got {hash.Length}", nameof(hash));
        (Step, Timestep, Expert, Guidance, Hash) = (step, timestep, expert, guidance, hash);
        LatentSketch = CheckSketch(latentSketch, nameof(latentSketch));
        VelocitySketch = CheckSketch(velocitySketch, nameof(velocitySketch));
    }

    public int Step { get; }
    public int Timestep { get; }
    public int Expert { get; }
    public double Guidance { get; }
    public byte[] Hash { get; }
    public Half[] LatentSketch { get; }
    public Half[] VelocitySketch { get; }

    /// <summary>
    /// The Merkle leaf: step, timestep (u32 LE), expert (u8), guidance (IEEE-754 binary64 LE), h_k (32 bytes), then
    /// s_k and u_k as 256 fp16 LE values each; <see cref="EncodedBytes"/> bytes in all.
    /// </summary>
    public byte[] Encode()
    {
        var bytes = new byte[EncodedBytes];
        var span = bytes.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)Step);
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], (uint)Timestep);
        span[8] = (byte)Expert;
        BinaryPrimitives.WriteDoubleLittleEndian(span[9..], Guidance);
        Hash.CopyTo(span[17..]);
        WriteSketch(LatentSketch, span.Slice(17 + MerkleTree.HashBytes, SketchDimension * 2));
        WriteSketch(VelocitySketch, span[(17 + MerkleTree.HashBytes + SketchDimension * 2)..]);
        return bytes;
    }

    /// <summary>The sketch's fp16 values as little-endian bytes, the form records and commitments carry them in.</summary>
    public static byte[] SketchBytes(Half[] sketch)
    {
        var bytes = new byte[sketch.Length * 2];
        WriteSketch(sketch, bytes);
        return bytes;
    }

    internal void WriteJson(Utf8JsonWriter json)
    {
        json.WriteNumber("step", Step);
        json.WriteNumber("timestep", Timestep);
        json.WriteNumber("expert", Expert);
        json.WriteNumber("guidance", Guidance);
        json.WriteString("hash", Convert.ToHexStringLower(Hash));
        json.WriteBase64String("latent_sketch", SketchBytes(LatentSketch));
        json.WriteBase64String("velocity_sketch", SketchBytes(VelocitySketch));
    }

    internal static TrajectoryRecord ReadJson(JsonElement json, string path) => new(
        TrajectoryJson.Int(json, "step", path),
        TrajectoryJson.Int(json, "timestep", path),
        TrajectoryJson.Int(json, "expert", path) is var expert and (WanRouting.HighNoiseExpert or WanRouting.LowNoiseExpert) ? expert : throw TrajectoryJson.Error(path, "expert", "must be 0 (high noise) or 1 (low noise)"),
        TrajectoryJson.Double(json, "guidance", path),
        TrajectoryJson.Hash(json, "hash", path),
        TrajectoryJson.Sketch(json, "latent_sketch", path),
        TrajectoryJson.Sketch(json, "velocity_sketch", path));

    internal static Half[] CheckSketch(Half[] sketch, string name)
    {
        ArgumentNullException.ThrowIfNull(sketch, name);
        if (sketch.Length != SketchDimension) throw new ArgumentException($"a sketch holds {SketchDimension} values, got {sketch.Length}", name);
        // An overflowing sketch (|value| > 65504) cannot be compared; a latent that large is no video.
        if (!sketch.All(Half.IsFinite)) throw new ArgumentException("a sketch must be finite in fp16", name);
        return sketch;
    }

    private static void WriteSketch(Half[] sketch, Span<byte> destination)
    {
        for (var i = 0; i < sketch.Length; i++)
            BinaryPrimitives.WriteHalfLittleEndian(destination[(2 * i)..], sketch[i]);
    }
}

using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using MLNode.Protocol.Diffusion;
using MLNode.Runtime.Diffusion;
using static TorchSharp.torch;

namespace MLNode.Engines.Dit.Trajectory;

/// <summary>
/// JL_256, the Johnson–Lindenstrauss sketch of a latent-sized tensor: y = R·x / √256 with R a [256, N] matrix of standard
/// normals, so that ‖y‖ ≈ ‖x‖ within ≈ 4.4% (1σ) and distances between sketches estimate distances between tensors
/// (dit-wan22.md §5.5). Row r of R is the r-th of 256 successive <c>torch.randn(N)</c> draws of one generator seeded
/// <see cref="Seed"/>: the portable Philox stream (<see cref="LatentNoise"/>) at philox offset r·a, a being what one draw of
/// N advances the generator (<see cref="PhiloxNoise.OffsetAdvance"/>). A chunk of rows is drawn at a time on the tensor's
/// own device, at most <see cref="MaxChunkBytes"/> of R, so a 480p latent (N = 2,096,640; R = 2.1 GB) never holds R whole.
/// On one device the result is the same bits each time; across devices the noise's last-ulp differences and the dot
/// products' summation order move it by float rounding only.
/// </summary>
public sealed class JlSketch
{
    public const string Version = "mlnode-wan-jl-v1";
    public const int Dimension = TrajectoryRecord.SketchDimension;
    public const long DefaultChunkBytes = 64L << 20;

    // √256 = 16: dividing by a power of two is exact.
    private const float Scale = 16f;

    public JlSketch(ulong seed, long maxChunkBytes = DefaultChunkBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxChunkBytes, 1);
        (Seed, MaxChunkBytes) = (seed, maxChunkBytes);
    }

    /// <summary>The network's sketch: seed = the first 8 bytes (u64 LE) of SHA-256 of <see cref="Version"/>.</summary>
    public static JlSketch Default { get; } = new(BinaryPrimitives.ReadUInt64LittleEndian(SHA256.HashData(Encoding.ASCII.GetBytes(Version))));

    public ulong Seed { get; }
    public long MaxChunkBytes { get; }
    public JlParameters Parameters => new(Version, Seed, Dimension);

    /// <summary>
    /// The float32 sketches [n, 256] of <paramref name="tensors"/> (each flattened; all of one element count and device),
    /// on that device: every chunk of R serves all of them.
    /// </summary>
    public Tensor Project(params Tensor[] tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (tensors.Length == 0) throw new ArgumentException("nothing to sketch", nameof(tensors));
        var count = tensors[0].numel();
        if (tensors.Any(t => t.numel() != count)) throw new ArgumentException("the tensors sketched together have one element count");
        var device = tensors[0].device;
        using var scope = NewDisposeScope();
        var columns = stack(tensors.Select(t => t.reshape(-1).to(ScalarType.Float32)).ToArray(), 1); // [N, n]
        var advance = PhiloxNoise.OffsetAdvance(count);
        var rowsPerChunk = (int)Math.Clamp(MaxChunkBytes / (count * sizeof(float)), 1, Dimension);
        var chunks = new List<Tensor>();
        for (var first = 0; first < Dimension; first += rowsPerChunk)
        {
            using var chunkScope = NewDisposeScope();
            var rows = Enumerable.Range(first, Math.Min(rowsPerChunk, Dimension - first))
                .Select(r => LatentNoise.Randn([count], Seed, device, (ulong)r * advance))
                .ToArray();
            chunks.Add(stack(rows).matmul(columns).MoveToOuterDisposeScope()); // [rows, n]
        }
        return (cat(chunks, 0).t() / Scale).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>The sketches of <paramref name="tensors"/> rounded to fp16, as records carry them (one array per tensor).</summary>
    public Half[][] Sketch(params Tensor[] tensors)
    {
        using var projected = Project(tensors);
        using var host = projected.cpu();
        var values = host.data<float>().ToArray();
        return [.. Enumerable.Range(0, tensors.Length).Select(i => values.AsSpan(i * Dimension, Dimension).ToArray().Select(v => (Half)v).ToArray())];
    }

    /// <summary>
    /// ‖a − b‖ / ‖<paramref name="reference"/>‖ over fp16 sketches, in float64: 0 for equal sketches, ≈ the relative
    /// distance of the sketched tensors otherwise.
    /// </summary>
    public static double RelativeDistance(Half[] a, Half[] b, Half[] reference)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        ArgumentNullException.ThrowIfNull(reference);
        double difference = 0, norm = 0;
        for (var i = 0; i < a.Length; i++)
        {
            var d = (double)a[i] - (double)b[i];
            difference += d * d;
            norm += (double)reference[i] * (double)reference[i];
        }
        return Math.Sqrt(difference) / Math.Sqrt(norm);
    }
}

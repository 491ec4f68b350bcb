using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using MLNode.Engines.Layers;
using MLNode.Runtime.Checkpoints;
using static TorchSharp.torch;

namespace MLNode.Engines.Dit.Validation.Calibration;

/// <summary>
/// Another model's weights made from a checkpoint's, for the malign side of a calibration: every tensor w becomes
/// <see cref="Keep"/>·w + <see cref="Noise"/>·rms(w)·z, z standard normal. (1, 0.01) is the checkpoint with 1% noise,
/// a cheaper or corrupted copy of the model; (0, 1) is a random model of the checkpoint's scale. z is drawn in float32
/// on the CPU from a generator seeded by <see cref="Seed"/> and the tensor's name, so every device and dtype perturbs a
/// tensor alike, before the sum is rounded to the source's dtype.
/// </summary>
public sealed class PerturbedWeights(WeightSource weights, double keep, double noise, long seed) : WeightSource(weights.Device, weights.DType)
{
    public double Keep { get; } = keep;
    public double Noise { get; } = noise;
    public long Seed { get; } = seed;

    protected override Tensor Load(string name, long[] shape)
    {
        using var scope = NewDisposeScope();
        var w = weights.Parameter(name, shape).to(ScalarType.Float32);
        var rms = w.square().mean().sqrt();
        using var generator = new Generator((ulong)(Seed ^ NameSeed(name)));
        var z = randn(shape, ScalarType.Float32, CPU, generator: generator).to(Device);
        return (Keep * w + Noise * rms * z).to(DType).MoveToOuterDisposeScope();
    }

    /// <summary>An expert of a diffusers-layout folder (config.json and its checkpoint) with every weight perturbed so.</summary>
    public static WanTransformer3DModel Expert(string expertFolder, Device device, ScalarType dtype, double keep, double noise, long seed)
    {
        var config = WanTransformerConfig.FromFile(Path.Combine(expertFolder, "config.json"));
        using var checkpoint = Checkpoint.Open(expertFolder, WanTransformer3DModel.CheckpointFileStem);
        var model = new WanTransformer3DModel(config,
            new PerturbedWeights(new CheckpointWeights(checkpoint, device, dtype), keep, noise, seed),
            new PerturbedWeights(new CheckpointWeights(checkpoint, device, ScalarType.Float32), keep, noise, seed));
        model.eval();
        return model;
    }

    /// <summary><paramref name="pipeline"/> with both experts of the checkpoint <paramref name="folder"/> perturbed (see <see cref="Expert"/>).</summary>
    public static WanPipeline Experts(WanPipeline pipeline, string folder, ScalarType dtype, double keep, double noise, long seed)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        return pipeline.WithExperts(
            Expert(Path.Combine(folder, "transformer"), pipeline.Device, dtype, keep, noise, seed),
            Expert(Path.Combine(folder, "transformer_2"), pipeline.Device, dtype, keep, noise, seed + 1));
    }

    private static long NameSeed(string name) => BinaryPrimitives.ReadInt64LittleEndian(SHA256.HashData(Encoding.UTF8.GetBytes(name)));
}

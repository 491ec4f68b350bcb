using Microsoft.Extensions.Logging;
using MLNode.Runtime.Checkpoints;
using MLNode.Runtime.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>
/// Hands tensors to module constructors by their checkpoint names, with the shape the architecture
/// expects, on the model's device and dtype, so modules are built straight from the weights with no
/// random initialisation first. A checkpoint whose tensor has another shape is refused by name.
/// </summary>
public abstract class WeightSource(Device device, ScalarType dtype)
{
    public Device Device { get; } = device;
    public ScalarType DType { get; } = dtype;

    public Parameter Parameter(string name, params long[] shape) => new(WithShape(name, Load(name, shape), shape), requires_grad: false);

    /// <summary>
    /// The linear weight <paramref name="name"/> [out, in] as block-scaled FP8, where this source keeps FP8 checkpoints
    /// as they are; null where the weight is dense or is dequantised on loading, and <see cref="Parameter"/> gives it.
    /// </summary>
    public virtual Fp8BlockWeight? Fp8Weight(string name, long outFeatures, long inFeatures) => null;

    /// <summary>True when <see cref="Fp8Weight"/> gives the linear weight <paramref name="name"/> as block-scaled FP8.</summary>
    public virtual bool KeepsFp8(string name) => false;

    protected abstract Tensor Load(string name, long[] shape);

    /// <summary>The tensor, or a refusal naming it when its shape is not the architecture's.</summary>
    protected static Tensor WithShape(string name, Tensor tensor, long[] shape)
    {
        if (tensor.shape.SequenceEqual(shape)) return tensor;
        var actual = string.Join("×", tensor.shape);
        tensor.Dispose();
        throw new InvalidDataException($"tensor {name} has shape [{actual}], the architecture expects [{string.Join("×", shape)}]");
    }
}

/// <summary>
/// Weights read from a safetensors checkpoint. Block-scaled FP8 weights (E4M3 with a <c>weight_scale_inv</c> grid of
/// 128×128 blocks) stay FP8 on a GPU with the native kernels, which multiply them as they are; elsewhere they are
/// dequantised to the model dtype on loading.
/// </summary>
public sealed class CheckpointWeights(Checkpoint checkpoint, Device device, ScalarType dtype) : WeightSource(device, dtype)
{
    /// <summary>
    /// A model built by <paramref name="build"/> straight from the checkpoint in <paramref name="folder"/>, on
    /// <paramref name="device"/> in <paramref name="dtype"/>, in eval mode.
    /// </summary>
    public static T Load<T>(string folder, Device device, ScalarType dtype, ILogger logger, Func<WeightSource, T> build, CancellationToken ct = default)
        where T : nn.Module
    {
        ct.ThrowIfCancellationRequested();
        using var checkpoint = Checkpoint.Open(folder);
        logger.LogInformation("Reading {Tensors} tensors from {Shards} shard(s) onto {Device} as {DType}", checkpoint.TensorNames.Count, checkpoint.ShardPaths.Count, device, dtype);
        var model = build(new CheckpointWeights(checkpoint, device, dtype));
        model.eval();
        return model;
    }

    public override bool KeepsFp8(string name) => Device.type == DeviceType.CUDA && NativeKernels.IsAvailable && IsBlockScaledFp8(name);

    public override Fp8BlockWeight? Fp8Weight(string name, long outFeatures, long inFeatures)
    {
        if (!KeepsFp8(name)) return null;
        var bits = WithShape(name, checkpoint.Load(name, Device), [outFeatures, inFeatures]);
        var scaleInv = checkpoint.Load(ScaleName(name), Device);
        try
        {
            return new Fp8BlockWeight(bits, scaleInv);
        }
        catch (ArgumentException e)
        {
            bits.Dispose();
            scaleInv.Dispose();
            throw new InvalidDataException($"checkpoint in {checkpoint.Folder}, {name}: {e.Message}", e);
        }
    }

    protected override Tensor Load(string name, long[] shape)
    {
        if (!checkpoint.Contains(name))
            throw new InvalidDataException($"checkpoint in {checkpoint.Folder} has no tensor {name}");
        return IsBlockScaledFp8(name)
            ? checkpoint.LoadFp8BlockScaled(name, DType, Device)
            : checkpoint.Load(name, Device, DType);
    }

    private bool IsBlockScaledFp8(string name) =>
        checkpoint.Contains(name) && checkpoint.GetInfo(name).DType == SafetensorsDType.F8E4M3 && checkpoint.Contains(ScaleName(name));

    private static string ScaleName(string weight) => $"{weight}_scale_inv";
}

/// <summary>
/// Random weights of the right shapes, made on the device: N(0, 0.02²) for matrices, ones for norm
/// scales, zeros for biases. For benchmarks of real model shapes without their checkpoints.
/// </summary>
public sealed class RandomWeights : WeightSource
{
    public RandomWeights(Device device, ScalarType dtype, long seed) : base(device, dtype) => manual_seed(seed);

    protected override Tensor Load(string name, long[] shape)
    {
        if (name.EndsWith("norm.weight", StringComparison.Ordinal)) return ones(shape, DType, Device);
        if (name.EndsWith(".bias", StringComparison.Ordinal)) return zeros(shape, DType, Device);
        using var values = randn(shape, ScalarType.Float32, Device);
        return values.mul_(0.02).to(DType);
    }
}

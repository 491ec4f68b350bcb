using MLNode.Runtime.Checkpoints;
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

    public Parameter Parameter(string name, params long[] shape)
    {
        var tensor = Load(name, shape);
        if (!tensor.shape.SequenceEqual(shape))
        {
            var actual = string.Join("×", tensor.shape);
            tensor.Dispose();
            throw new InvalidDataException($"tensor {name} has shape [{actual}], the architecture expects [{string.Join("×", shape)}]");
        }
        return new Parameter(tensor, requires_grad: false);
    }

    protected abstract Tensor Load(string name, long[] shape);
}

/// <summary>Weights read from a safetensors checkpoint.</summary>
public sealed class CheckpointWeights(Checkpoint checkpoint, Device device, ScalarType dtype) : WeightSource(device, dtype)
{
    /// <summary>
    /// FP8 block-quantised weights (e4m3 with a <c>weight_scale_inv</c> grid) are dequantised to the model
    /// dtype here; a fused FP8 GEMM replaces this on GPUs that have the native kernels.
    /// </summary>
    protected override Tensor Load(string name, long[] shape)
    {
        if (!checkpoint.Contains(name))
            throw new InvalidDataException($"checkpoint in {checkpoint.Folder} has no tensor {name}");
        var scale = $"{name}_scale_inv";
        return checkpoint.GetInfo(name).DType == SafetensorsDType.F8E4M3 && checkpoint.Contains(scale)
            ? checkpoint.LoadFp8BlockScaled(name, DType, Device)
            : checkpoint.Load(name, Device, DType);
    }
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

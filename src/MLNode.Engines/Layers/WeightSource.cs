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
/// random initialisation first. A checkpoint whose tensor has another shape is refused by name. A tensor-parallel rank
/// asks for its slice of a tensor, and a source that reads checkpoints reads only that slice.
/// </summary>
public abstract class WeightSource(Device device, ScalarType dtype)
{
    private readonly List<WeightRead> _reads = [];

    public Device Device { get; } = device;
    public ScalarType DType { get; } = dtype;

    /// <summary>Every tensor handed out so far: what a rank holds of the model, against the whole model.</summary>
    public IReadOnlyList<WeightRead> Reads => _reads;

    public Parameter Parameter(string name, params long[] shape) => Parameter(name, shape, null);

    /// <summary><paramref name="slice"/> of the tensor <paramref name="name"/> whose whole shape is <paramref name="wholeShape"/>, or all of it.</summary>
    public Parameter Parameter(string name, long[] wholeShape, TensorSlice? slice)
    {
        var shape = slice?.ShapeOf(wholeShape) ?? wholeShape;
        var tensor = WithShape(name, slice is null ? Load(name, shape) : LoadSlice(name, wholeShape, slice), shape);
        Record(name, wholeShape, shape);
        return new(tensor, requires_grad: false);
    }

    /// <summary>
    /// The linear weight <paramref name="name"/> [out, in] (or <paramref name="slice"/> of it) as block-scaled FP8, where
    /// this source keeps FP8 checkpoints as they are; null where the weight is dense or is dequantised on loading, and
    /// <see cref="Parameter"/> gives it.
    /// </summary>
    public virtual Fp8BlockWeight? Fp8Weight(string name, long outFeatures, long inFeatures, TensorSlice? slice = null) => null;

    /// <summary>True when <see cref="Fp8Weight"/> gives the linear weight <paramref name="name"/> as block-scaled FP8.</summary>
    public virtual bool KeepsFp8(string name) => false;

    protected abstract Tensor Load(string name, long[] shape);

    /// <summary><paramref name="slice"/> of the tensor <paramref name="name"/> of shape <paramref name="wholeShape"/>, reading no more of it than the slice.</summary>
    protected virtual Tensor LoadSlice(string name, long[] wholeShape, TensorSlice slice) =>
        throw new NotSupportedException($"{GetType().Name} cannot load a slice of {name}; tensor-parallel ranks need a source that can");

    protected void Record(string name, long[] wholeShape, long[] shape) =>
        _reads.Add(new WeightRead(name, shape.Aggregate(1L, (a, b) => a * b), wholeShape.Aggregate(1L, (a, b) => a * b)));

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

    public override Fp8BlockWeight? Fp8Weight(string name, long outFeatures, long inFeatures, TensorSlice? slice = null)
    {
        if (!KeepsFp8(name)) return null;
        long[] whole = [outFeatures, inFeatures];
        Tensor bits, scaleInv;
        if (slice is null)
        {
            bits = WithShape(name, checkpoint.Load(name, Device), whole);
            scaleInv = checkpoint.Load(ScaleName(name), Device);
        }
        else
        {
            RequireShape(name, whole);
            var (hostBits, hostScales) = checkpoint.LoadFp8BlockSlice(name, slice);
            using (hostBits)
            using (hostScales)
                (bits, scaleInv) = (hostBits.to(Device), hostScales.to(Device));
        }
        Record(name, whole, slice?.ShapeOf(whole) ?? whole);
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

    protected override Tensor LoadSlice(string name, long[] wholeShape, TensorSlice slice)
    {
        RequireShape(name, wholeShape);
        return IsBlockScaledFp8(name)
            ? checkpoint.LoadFp8BlockScaled(name, DType, Device, slice: slice)
            : checkpoint.Load(name, Device, DType, slice);
    }

    /// <summary>A slice is only the architecture's slice if the stored tensor has the architecture's whole shape: checked before reading.</summary>
    private void RequireShape(string name, long[] wholeShape)
    {
        if (!checkpoint.Contains(name))
            throw new InvalidDataException($"checkpoint in {checkpoint.Folder} has no tensor {name}");
        var stored = checkpoint.GetInfo(name).Shape;
        if (!stored.SequenceEqual(wholeShape))
            throw new InvalidDataException($"tensor {name} has shape [{string.Join("×", stored)}], the architecture expects [{string.Join("×", wholeShape)}]");
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

    protected override Tensor LoadSlice(string name, long[] wholeShape, TensorSlice slice) => Load(name, slice.ShapeOf(wholeShape));
}

/// <summary>One tensor a <see cref="WeightSource"/> handed out: the elements it holds and those of the whole stored tensor.</summary>
public sealed record WeightRead(string Name, long Elements, long WholeElements);

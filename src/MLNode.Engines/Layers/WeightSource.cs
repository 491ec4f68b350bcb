using MLNode.Runtime.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>
/// Hands checkpoint tensors to module constructors by their checkpoint names, on the model's device
/// and dtype, so modules are built directly from the weights (no random initialisation first).
/// </summary>
public sealed class WeightSource(Checkpoint checkpoint, Device device, ScalarType dtype)
{
    public Device Device { get; } = device;
    public ScalarType DType { get; } = dtype;

    public bool Has(string name) => checkpoint.Contains(name);

    /// <summary>
    /// The tensor <paramref name="name"/> as a frozen parameter. FP8 block-quantised weights (e4m3 with a
    /// <c>weight_scale_inv</c> grid) are dequantised to the model dtype here; a fused FP8 GEMM replaces
    /// this on GPUs that have the native kernels.
    /// </summary>
    public Parameter Parameter(string name)
    {
        var scale = $"{name}_scale_inv";
        var tensor = checkpoint.GetInfo(name).DType == SafetensorsDType.F8E4M3 && checkpoint.Contains(scale)
            ? checkpoint.LoadFp8BlockScaled(name, DType, Device)
            : checkpoint.Load(name, Device, DType);
        return new Parameter(tensor, requires_grad: false);
    }

    public Parameter? OptionalParameter(string name) => Has(name) ? Parameter(name) : null;
}

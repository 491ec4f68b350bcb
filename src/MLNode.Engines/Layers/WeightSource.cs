using MLNode.Runtime.Checkpoints;
using TorchSharp;
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

    public nn.Parameter Parameter(string name) => new(checkpoint.Load(name, Device, DType), requires_grad: false);

    public nn.Parameter? OptionalParameter(string name) => Has(name) ? Parameter(name) : null;
}

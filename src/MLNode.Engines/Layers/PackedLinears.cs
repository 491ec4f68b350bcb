using MLNode.Runtime.Checkpoints;
using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>
/// Linear layers that read the same input (q/k/v, gate/up) with their weights packed into one [Σ out, in] matrix, so
/// that one GEMM computes all of them: a decode step then streams the weights in fewer, wider launches. Each layer
/// stays a module under its checkpoint name, its weight (and bias) a view of the packed rows. Block-scaled FP8 weights
/// are not packed (each matrix has its own scale grid) and run as separate layers.
/// </summary>
public sealed class PackedLinears
{
    private readonly Tensor? _weight;
    private readonly Tensor? _bias;
    private readonly long[] _widths;

    private PackedLinears(Linear[] layers, long[] widths, Tensor? weight, Tensor? bias) =>
        (Layers, _widths, _weight, _bias) = (layers, widths, weight, bias);

    /// <summary>The layers, in the order of <see cref="Load"/>'s names; their outputs lie side by side in <see cref="Forward"/>'s.</summary>
    public IReadOnlyList<Linear> Layers { get; }

    /// <summary>
    /// The layers <c>{prefix}.{name}</c> [outFeatures[i], inFeatures], packed unless one of them stays FP8. With
    /// <paramref name="rows"/>, layer i holds only rows[i] of its weight and bias (a column-parallel rank's share).
    /// </summary>
    public static PackedLinears Load(WeightSource w, string prefix, string[] names, long inFeatures, long[] outFeatures, bool hasBias = false,
        TensorSlice?[]? rows = null)
    {
        rows ??= new TensorSlice?[names.Length];
        var widths = outFeatures.Select((n, i) => rows[i]?.Length ?? n).ToArray();
        if (names.Any(n => w.KeepsFp8($"{prefix}.{n}.weight")))
            return new([.. names.Select((n, i) => new ColumnParallelLinear(w, $"{prefix}.{n}", inFeatures, outFeatures[i], rows[i], hasBias))], widths, null, null);
        var weight = empty([widths.Sum(), inFeatures], w.DType, w.Device).DetachFromDisposeScope();
        var bias = hasBias ? empty([widths.Sum()], w.DType, w.Device).DetachFromDisposeScope() : null;
        var layers = new Linear[names.Length];
        for (long i = 0, row = 0; i < names.Length; row += widths[i], i++)
        {
            var name = $"{prefix}.{names[i]}";
            using (var loaded = w.Parameter($"{name}.weight", [outFeatures[i], inFeatures], rows[i])) weight.narrow(0, row, widths[i]).copy_(loaded);
            if (bias is not null)
                using (var loaded = w.Parameter($"{name}.bias", [outFeatures[i]], rows[i])) bias.narrow(0, row, widths[i]).copy_(loaded);
            layers[i] = new Linear(name, weight.narrow(0, row, widths[i]), bias?.narrow(0, row, widths[i]));
        }
        return new(layers, widths, weight, bias);
    }

    /// <summary>The packed [Σ out, in] weight; null where the layers stay separate.</summary>
    internal Tensor? Weight => _weight;

    /// <summary>Every layer's output, side by side along the last dimension [..., Σ out].</summary>
    public Tensor Forward(Tensor x) =>
        _weight is null ? cat([.. Layers.Select(l => l.forward(x))], -1) : Linear.Dense(x, _weight, _bias);

    /// <summary><see cref="Forward"/>'s output cut back into the layers' outputs (views).</summary>
    public Tensor[] Split(Tensor packed) => packed.split(_widths, -1);
}

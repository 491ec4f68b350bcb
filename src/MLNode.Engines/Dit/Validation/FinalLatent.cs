using MLNode.Engines.Dit.Trajectory;
using MLNode.Runtime.Checkpoints;
using static TorchSharp.torch;

namespace MLNode.Engines.Dit.Validation;

/// <summary>
/// The final latent x0 an executor reveals for the decode check (<c>GET /v1/videos/{id}/final_latent</c>): one float32
/// tensor named <see cref="TensorName"/> in a safetensors file, [C, T, h, w], with <see cref="Sha256"/> its
/// <see cref="TensorHash"/> in lowercase hex — what the executor committed to as <c>h_final</c> (spec §5.6 (B)).
/// </summary>
public sealed class FinalLatent : IDisposable
{
    public const string TensorName = StepStateStore.FinalLatent;

    private FinalLatent(Tensor values, string sha256) => (Values, Sha256) = (values, sha256);

    /// <summary>The latent on the CPU.</summary>
    public Tensor Values { get; }

    public string Sha256 { get; }

    public long[] Shape => Values.shape;

    /// <summary>Reads the file; anything but a single float32 tensor "x0" of rank 4 raises a <see cref="ValidationInputException"/> for <paramref name="field"/>.</summary>
    public static FinalLatent Read(string path, string field)
    {
        try
        {
            using var file = SafetensorsFile.Open(path);
            if (file.Tensors.Count != 1 || !file.Contains(TensorName))
                throw new ValidationInputException(field, $"must hold exactly one tensor, '{TensorName}'; it holds {string.Join(", ", file.Tensors.Select(t => $"'{t.Name}'"))}");
            var info = file.GetInfo(TensorName);
            if (info.DType != SafetensorsDType.F32) throw new ValidationInputException(field, $"'{TensorName}' must be F32, got {info.DType.FormatName()}");
            if (info.Shape.Length != 4) throw new ValidationInputException(field, $"'{TensorName}' must be [C, T, h, w], got [{string.Join(", ", info.Shape)}]");
            var values = file.Load(TensorName, CPU);
            return new FinalLatent(values, Convert.ToHexStringLower(TensorHash.Sha256(values)));
        }
        catch (SafetensorsFormatException e)
        {
            throw new ValidationInputException(field, $"not a safetensors file: {e.Message.Replace(path, "upload", StringComparison.Ordinal)}");
        }
    }

    public void Dispose() => Values.Dispose();
}

using System.Security.Cryptography;
using MLNode.Runtime.Checkpoints;
using static TorchSharp.torch;

namespace MLNode.Engines.Dit.Validation;

/// <summary>
/// The final latent x0 an executor reveals for the decode check: one float32 tensor named <see cref="TensorName"/> in a
/// safetensors file, [C, T, h, w], with <see cref="Sha256"/> the SHA-256 (lowercase hex) of its little-endian float32
/// bytes in row-major order — the <c>h_final</c> the executor committed to (spec §5.6 (B)).
/// </summary>
public sealed class FinalLatent : IDisposable
{
    public const string TensorName = "x0";

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
            var sha256 = Convert.ToHexStringLower(SHA256.HashData(file.GetBytes(TensorName)));
            return new FinalLatent(file.Load(TensorName, CPU), sha256);
        }
        catch (SafetensorsFormatException e)
        {
            throw new ValidationInputException(field, $"not a safetensors file: {e.Message.Replace(path, "upload", StringComparison.Ordinal)}");
        }
    }

    /// <summary>The <c>h_final</c> of a latent: SHA-256 of its float32 values, little-endian, row-major.</summary>
    public static string Hash(Tensor latent)
    {
        ArgumentNullException.ThrowIfNull(latent);
        if (latent.dtype != ScalarType.Float32) throw new ArgumentException($"the final latent is float32, got {latent.dtype}", nameof(latent));
        using var scope = NewDisposeScope();
        return Convert.ToHexStringLower(SHA256.HashData(latent.cpu().contiguous().bytes));
    }

    public void Dispose() => Values.Dispose();
}

using System.Security.Cryptography;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Dit.Trajectory;

/// <summary>SHA-256 of float32 tensors' exact bytes, little-endian in row-major order, one tensor after the other.</summary>
public static class TensorHash
{
    public static byte[] Sha256(params Tensor[] tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var tensor in tensors)
        {
            if (tensor.dtype != ScalarType.Float32) throw new ArgumentException($"trajectory hashes are over float32 bytes; got {tensor.dtype}");
            using var host = tensor.cpu();
            using var contiguous = host.contiguous();
            sha.AppendData(contiguous.bytes);
        }
        return sha.GetHashAndReset();
    }
}

using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Runtime.Native;

public static partial class NativeKernels
{
    /// <summary>The longest artifact <see cref="PocArtifacts"/> computes (its per-nonce work lives in shared memory).</summary>
    public const int PocArtifactsMaxK = 64;

    /// <summary>
    /// PoC v2 artifacts of B nonces in one launch (<c>kernels/poc_artifacts.cu</c>; reference:
    /// <c>ArtifactEncoder.Vector</c> rounded to float16): per row of <paramref name="hidden"/>, the norm, the
    /// seeded pick of k dimensions, the Haar rotation by the given unit vectors and the final normalisation.
    /// </summary>
    /// <param name="hidden">Final hidden rows [B, d]: float32, float16 or bfloat16, contiguous, on the GPU.</param>
    /// <param name="pickSeeds">int32 [B]: the bits of each nonce's <c>PocSeeds.Pick</c>.</param>
    /// <param name="haarVectors">float32 [B, k−1, k]: each nonce's <c>HaarRotation.UnitVectors</c>.</param>
    /// <param name="artifacts">Output float16 [B, k]; zeros for a row that is not finite.</param>
    /// <param name="indices">Output int32 [B, k]: the picked dimensions in the reference order.</param>
    /// <param name="finite">Output bool [B]: false for a row holding NaN or ±∞ (the reference drops it).</param>
    public static void PocArtifacts(Tensor hidden, Tensor pickSeeds, Tensor haarVectors, Tensor artifacts, Tensor indices, Tensor finite)
    {
        if (hidden.dim() != 2)
            throw new ArgumentException($"hidden rows must be [B, d]; got [{string.Join(", ", hidden.shape)}]", nameof(hidden));
        if (hidden.device.type != DeviceType.CUDA)
            throw new ArgumentException($"hidden rows must be on a GPU; got {hidden.device}", nameof(hidden));
        var (batch, width) = (hidden.shape[0], hidden.shape[1]);
        if (artifacts.dim() != 2 || artifacts.shape[0] != batch)
            throw new ArgumentException($"artifacts must be [{batch}, k]; got [{string.Join(", ", artifacts.shape)}]", nameof(artifacts));
        var k = artifacts.shape[1];
        if (k < 1 || k > PocArtifactsMaxK || k > width)
            throw new ArgumentException($"k = {k} must be in [1, min({PocArtifactsMaxK}, d = {width})]", nameof(artifacts));

        Expect(pickSeeds, ScalarType.Int32, [batch], nameof(pickSeeds));
        Expect(haarVectors, ScalarType.Float32, [batch, k - 1, k], nameof(haarVectors));
        Expect(artifacts, ScalarType.Float16, [batch, k], nameof(artifacts));
        Expect(indices, ScalarType.Int32, [batch, k], nameof(indices));
        Expect(finite, ScalarType.Bool, [batch], nameof(finite));

        Check(mlnode_poc_artifacts_encode(Pointer(hidden), (int)hidden.dtype, batch, checked((int)width), (int)k, Pointer(pickSeeds),
                Pointer(haarVectors), Pointer(artifacts), Pointer(indices), Pointer(finite), Stream),
            nameof(mlnode_poc_artifacts_encode));

        void Expect(Tensor tensor, ScalarType dtype, long[] shape, string name)
        {
            if (tensor.dtype != dtype || !tensor.shape.SequenceEqual(shape))
                throw new ArgumentException($"expected {dtype} [{string.Join(", ", shape)}]; got {tensor.dtype} [{string.Join(", ", tensor.shape)}]", name);
            if (tensor.device.type != DeviceType.CUDA || tensor.device.index != hidden.device.index)
                throw new ArgumentException($"{name} is on {tensor.device}, the hidden rows on {hidden.device}: both must be on the same GPU", name);
        }
    }

    [LibraryImport(LibraryName)]
    private static partial int mlnode_poc_artifacts_encode(nint hidden, int hiddenDtype, long batch, int hiddenSize, int kDim,
        nint pickSeeds, nint haarVectors, nint artifacts, nint indices, nint finite, nint stream);
}

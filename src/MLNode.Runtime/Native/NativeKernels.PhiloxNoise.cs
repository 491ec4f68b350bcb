using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace MLNode.Runtime.Native;

public static partial class NativeKernels
{
    /// <summary>
    /// Fills float32 <paramref name="noise"/> (contiguous, on the GPU) with the portable Philox normals of
    /// <paramref name="seed"/> at philox offset <paramref name="offset"/> (kernels/philox_noise.cu; reference
    /// <c>MLNode.Protocol.Diffusion.PhiloxNoise</c>).
    /// </summary>
    public static void PhiloxNormal(Tensor noise, ulong seed, ulong offset)
    {
        if (noise.dtype != ScalarType.Float32)
            throw new ArgumentException($"noise must be float32, got {noise.dtype}", nameof(noise));
        Check(mlnode_philox_noise_normal(Pointer(noise), noise.numel(), seed, offset, Stream), nameof(mlnode_philox_noise_normal));
    }

    [LibraryImport(LibraryName)]
    private static partial int mlnode_philox_noise_normal(nint noise, long count, ulong seed, ulong offset, nint stream);
}

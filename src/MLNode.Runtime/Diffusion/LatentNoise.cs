using MLNode.Protocol.Diffusion;
using MLNode.Runtime.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Runtime.Diffusion;

/// <summary>
/// Initial DiT latents that are the same on every device: <c>torch.randn(shape, generator=CUDA generator seeded
/// seed, dtype=float32)</c> as a 132-SM Hopper computes it (see <see cref="PhiloxNoise"/>). On a GPU the native
/// kernel gives those bits exactly; elsewhere the C# reference gives them to within a few 1e-6.
/// </summary>
public static class LatentNoise
{
    /// <param name="offset">The generator's philox offset: 0 for a freshly seeded generator (a multiple of 4).</param>
    public static Tensor Randn(ReadOnlySpan<long> shape, ulong seed, Device device, ulong offset = 0)
    {
        if (device.type == DeviceType.CUDA && NativeKernels.IsAvailable)
        {
            var noise = empty(shape, ScalarType.Float32, device);
            NativeKernels.PhiloxNormal(noise, seed, offset);
            return noise;
        }
        var count = shape.ToArray().Aggregate(1L, (a, b) => a * b);
        using var host = tensor(PhiloxNoise.Generate(seed, checked((int)count), offset), shape, ScalarType.Float32);
        return host.to(device);
    }
}

using System.Diagnostics;
using System.Text.Json;
using MLNode.Engines.Dit.Vae;
using MLNode.Engines.Layers;
using MLNode.Runtime.Gpu;
using MLNode.Runtime.Torch;
using static TorchSharp.torch;

/// <summary>
/// The Wan2.1 VAE decoder (the A14B pipeline's: base 96, dim_mult 1·2·4·4, 2 res blocks, temporal upsampling in the
/// last two stages) with random float32 weights, decoding a 480×832 × 81-frame latent [16, 21, 60, 104] frame by frame:
/// seconds and the peak GPU memory (NVML, all of the device).
/// </summary>
static class WanVaeBenchmark
{
    public static int Run(TorchRuntime runtime, Options o)
    {
        var (latentFrames, height, width) = (o.Int("latent-frames", 21), o.Int("latent-height", 60), o.Int("latent-width", 104));
        var path = Path.Combine(Path.GetTempPath(), "mlnode-wan21-vae-config.json");
        File.WriteAllText(path, JsonSerializer.Serialize(new
        {
            _class_name = "AutoencoderKLWan", base_dim = 96, z_dim = 16, dim_mult = new[] { 1, 2, 4, 4 }, num_res_blocks = 2,
            attn_scales = Array.Empty<double>(), temperal_downsample = new[] { false, true, true }, dropout = 0.0, in_channels = 3, out_channels = 3,
            is_residual = false, latents_mean = Enumerable.Repeat(0.0, 16), latents_std = Enumerable.Repeat(1.0, 16),
        }));
        using var noGrad = no_grad();
        var vae = new WanVaeDecoder(WanVaeConfig.FromFile(path), new RandomWeights(runtime.Device, ScalarType.Float32, seed: 1));
        using var peak = new PocBenchmark.PeakMemory(new Nvml());
        using var latent = randn([16, latentFrames, height, width], ScalarType.Float32, runtime.Device);
        using (vae.Decode(latent.narrow(1, 0, 2))) { } // warm-up: kernels, allocator
        if (runtime.IsCuda) cuda.synchronize();
        var watch = Stopwatch.StartNew();
        using var video = vae.Decode(latent);
        if (runtime.IsCuda) cuda.synchronize();
        Console.WriteLine($"RESULT wan-vae engine=mlnode latent={latentFrames}x{height}x{width} video={string.Join('x', video.shape)} " +
            $"seconds={watch.Elapsed.TotalSeconds:F2} peak_gpu_mib={peak.MaxUsedMb}");
        return 0;
    }
}

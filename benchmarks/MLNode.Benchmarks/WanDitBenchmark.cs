using System.Diagnostics;
using System.Text.Json;
using MLNode.Engines.Dit;
using MLNode.Engines.Dit.Text;
using MLNode.Engines.Layers;
using MLNode.Runtime.Checkpoints;
using MLNode.Runtime.Gpu;
using MLNode.Runtime.Torch;
using static TorchSharp.torch;

/// <summary>
/// One forward of a Wan2.2-A14B-shaped expert (random weights: projections bf16, the float32 parts float32) with a
/// 512-row context, at the spec's token counts N = 7,800 (480p, 17 frames) and N = 32,760 (480p, 81 frames), batch 1
/// and batch 2 (CFG's two branches in one forward): seconds per forward, model TFLOP/s by spec §6.1's count, and the
/// peak GPU memory (NVML, all of the device).
/// </summary>
static class WanDitBenchmark
{
    public static int Run(TorchRuntime runtime, Options o)
    {
        var layers = o.Int("layers", 40);
        var runs = o.Int("runs", 3);
        var config = A14BExpert(layers);
        using var noGrad = no_grad();
        var model = new WanTransformer3DModel(config, new RandomWeights(runtime.Device, ScalarType.BFloat16, seed: 1), new RandomWeights(runtime.Device, ScalarType.Float32, seed: 2));
        using var peak = new PocBenchmark.PeakMemory(new Nvml());

        // Latent frames 5 and 21 of a 480×832 video (17 and 81 frames): 60×104 latent cells, 30×52 tokens per frame.
        foreach (var frames in new[] { 5, 21 })
        {
            foreach (var batch in new[] { 1, 2 })
            {
                using var scope = NewDisposeScope();
                var latents = randn([batch, config.InChannels, frames, 60, 104], ScalarType.Float32, runtime.Device);
                var contexts = randn([batch, 512, config.TextDim], ScalarType.Float32, runtime.Device);
                var timesteps = full(batch, 900L, ScalarType.Int64, runtime.Device);
                model.Forward(latents, timesteps, contexts).Dispose(); // warm-up: kernels, allocator
                cuda.synchronize();
                var watch = Stopwatch.StartNew();
                for (var i = 0; i < runs; i++) model.Forward(latents, timesteps, contexts).Dispose();
                cuda.synchronize();
                var seconds = watch.Elapsed.TotalSeconds / runs;
                var tokens = frames * 30L * 52;
                Console.WriteLine($"RESULT wan-dit engine=mlnode layers={layers} batch={batch} tokens={tokens} context=512 seconds={seconds:F3} " +
                    $"tflops={batch * Flops(config, tokens, 512) / seconds / 1e12:F1} peak_gpu_mib={peak.MaxUsedMb}");
            }
        }
        return 0;
    }

    /// <summary>
    /// wan-tiny's experts on this device against the reference forwards at t = 900 (see WanTransformerTests): float32
    /// (the reference's TF32 patch embedding not reproduced, so ~2.5e-4) and bfloat16 projections (~5e-3).
    /// </summary>
    public static int Fixtures(TorchRuntime runtime, string folder)
    {
        using var noGrad = no_grad();
        using var tensors = SafetensorsFile.Open(Path.Combine(folder, "reference_tensors.safetensors"));
        using var outputs = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "reference_outputs.json")));
        using var noise = tensors.Load("noise", runtime.Device);
        using var text = tensors.Load("text_embeds", runtime.Device);
        using var context = WanTextEncoder.PadToTextLength(text, outputs.RootElement.GetProperty("text_len_padded").GetInt32());
        var worstRelative = 0.0;
        foreach (var (expert, reference) in new[] { ("transformer", "forward_high_t900"), ("transformer_2", "forward_low_t900") })
        {
            using var expected = tensors.Load(reference, runtime.Device);
            foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
            {
                var model = WanTransformer3DModel.Load(Path.Combine(folder, expert), runtime.Device, dtype, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
                using var ours = model.Forward(noise, 900, context);
                var relative = (expected - ours).abs().max().item<float>() / expected.abs().max().item<float>();
                if (dtype == ScalarType.Float32) worstRelative = Math.Max(worstRelative, relative);
                Console.WriteLine($"RESULT wan-dit-fixtures expert={expert} dtype={dtype} max_rel_error={relative:E2}");
                model.Dispose();
            }
        }
        return worstRelative <= 1e-3 ? 0 : 1;
    }

    /// <summary>Spec §6.1: per block 12ND² (projections) + 4NDF (FFN) + 4N²D (self-attention) + 4·N·Lc·D (cross scores) + 4·Lc·D² (cross k, v).</summary>
    private static double Flops(WanTransformerConfig c, long tokens, long contextRows)
    {
        double n = tokens, d = c.InnerDim, f = c.FfnDim, lc = contextRows;
        return c.NumLayers * (12 * n * d * d + 4 * n * d * f + 4 * n * n * d + 4 * n * lc * d + 4 * lc * d * d);
    }

    private static WanTransformerConfig A14BExpert(int layers) => WanTransformerConfig.Parse(JsonSerializer.Serialize(new
    {
        _class_name = "WanTransformer3DModel", patch_size = new[] { 1, 2, 2 }, num_attention_heads = 40, attention_head_dim = 128,
        in_channels = 16, out_channels = 16, text_dim = 4096, freq_dim = 256, ffn_dim = 13824, num_layers = layers,
        cross_attn_norm = true, qk_norm = "rms_norm_across_heads", eps = 1e-6, rope_max_seq_len = 1024,
    }), "wan2.2-a14b-expert-shape");
}

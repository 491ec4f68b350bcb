using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Engines.Dit;
using MLNode.Engines.Dit.Text;
using MLNode.Engines.Dit.Validation.Calibration;
using MLNode.Engines.Dit.Vae;
using MLNode.Engines.Layers;
using MLNode.Runtime.Checkpoints;
using MLNode.Tests;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Dit;

/// <summary>
/// wan-tiny's experts, text encoder and VAE, loaded once per variant, its reference tensors, and pipeline_reference.json's
/// job as a spec.
/// <para>
/// The references ran on a GPU, where PyTorch lets cuDNN run convolutions in TF32 by default
/// (<c>torch.backends.cudnn.allow_tf32 = True</c>): the patch embedding's Conv3d saw its latent and weight rounded to
/// 10 mantissa bits and accumulated in float32. The matrix products (<c>torch.backends.cuda.matmul.allow_tf32 = False</c>)
/// and everything else stayed float32. <see cref="ReferenceNumerics"/> reproduces that rounding on the CPU.
/// </para>
/// </summary>
public static class WanTiny
{
    public const string HighNoiseExpert = "transformer";
    public const string LowNoiseExpert = "transformer_2";

    private static readonly Dictionary<(string, Numerics), WanTransformer3DModel> Experts = new();
    private static readonly Lock Gate = new();
    private static readonly Lazy<WanTextEncoder> Text = new(() => OnOwnThread(
        () => WanTextEncoder.Load(Fixtures.Path("wan", "wan-tiny"), CPU, ScalarType.Float32, NullLogger.Instance), "text encoder"));
    private static readonly Lazy<WanVaeDecoder> VaeDecoder = new(() => OnOwnThread(
        () => WanVaeDecoder.Load(Fixtures.Path("wan", "wan-tiny", "vae"), CPU, NullLogger.Instance), "VAE"));

    public enum Numerics
    {
        /// <summary>float32 throughout, the operands of the patch embedding rounded to TF32 as the GPU reference's Conv3d did.</summary>
        ReferenceNumerics,

        /// <summary>float32 throughout.</summary>
        Float32,

        /// <summary>Projections in bfloat16, residual stream, norms, modulation and head in float32: the GPU policy.</summary>
        BFloat16,
    }

    public static WanTextEncoder TextEncoder => Text.Value;

    public static WanVaeDecoder Vae => VaeDecoder.Value;

    /// <summary>The pipeline on the CPU with both experts in <paramref name="numerics"/>.</summary>
    public static WanPipeline CpuPipeline(Numerics numerics) =>
        new(TextEncoder, Expert(HighNoiseExpert, numerics), Expert(LowNoiseExpert, numerics), Vae, CPU);

    /// <summary>wan-tiny as a served model: its config's latent and patch facts, run in float32.</summary>
    public static WanModelFacts Facts() => WanModelFacts.Of("wan-tiny", "fixture", [], "float32",
        WanTransformerConfig.FromFile(Fixtures.Path("wan", "wan-tiny", "transformer", "config.json")),
        WanVaeConfig.FromFile(Fixtures.Path("wan", "wan-tiny", "vae", "config.json")));

    /// <summary>pipeline_reference.json's job as a spec: its prompts, size, steps, shift, boundary, guidance and seed, the official grid.</summary>
    public static WanJobSpec ReferenceSpec() =>
        new WanJobPlanner(Facts(), new WanJobDefaults(), new WanJobLimits()).Plan(WanCalibration.ReferenceRequest(Fixtures.Path("wan", "wan-tiny")));

    public static WanTransformer3DModel Expert(string expert, Numerics numerics)
    {
        lock (Gate)
        {
            if (!Experts.TryGetValue((expert, numerics), out var model))
                Experts[(expert, numerics)] = model = OnOwnThread(() => Load(expert, numerics), expert);
            return model;
        }
    }

    /// <summary>A tensor of reference_tensors.safetensors.</summary>
    public static Tensor Reference(string name) => Read("reference_tensors.safetensors", name);

    /// <summary>A tensor of pipeline_tensors.safetensors.</summary>
    public static Tensor Pipeline(string name) => Read("pipeline_tensors.safetensors", name);

    /// <summary>
    /// Rounds float32 to TF32 (10 mantissa bits) to nearest, ties away from zero, as the tensor cores' conversion does:
    /// the reference's patch embedding inputs.
    /// </summary>
    public static Tensor Tf32Rounded(Tensor x)
    {
        var values = x.contiguous().data<float>().ToArray();
        for (var i = 0; i < values.Length; i++)
            values[i] = BitConverter.Int32BitsToSingle((BitConverter.SingleToInt32Bits(values[i]) + 0x1000) & ~0x1FFF);
        return tensor(values, x.shape);
    }

    private static WanTransformer3DModel Load(string expert, Numerics numerics)
    {
        var folder = Fixtures.Path("wan", "wan-tiny", expert);
        if (numerics != Numerics.ReferenceNumerics)
            return WanTransformer3DModel.Load(folder, CPU, numerics == Numerics.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float32, NullLogger.Instance);
        using var checkpoint = Checkpoint.Open(folder, WanTransformer3DModel.CheckpointFileStem);
        var float32 = new CheckpointWeights(checkpoint, CPU, ScalarType.Float32);
        var model = new WanTransformer3DModel(WanTransformerConfig.FromFile(Path.Combine(folder, "config.json")), new Tf32PatchEmbedding(float32), float32);
        model.eval();
        return model;
    }

    private static Tensor Read(string file, string name)
    {
        using var tensors = SafetensorsFile.Open(Fixtures.Path("wan", "wan-tiny", file));
        return tensors.Load(name, CPU);
    }

    /// <summary>
    /// Runs <paramref name="load"/> on a new thread without the caller's execution context: TorchSharp would otherwise
    /// register the weights in whatever dispose scope the calling test thread has open (see TinyModels).
    /// </summary>
    public static T OnOwnThread<T>(Func<T> load, string what) where T : class
    {
        T? loaded = null;
        Exception? failure = null;
        using (ExecutionContext.SuppressFlow())
        {
            var loader = new Thread(() =>
            {
                try
                {
                    loaded = load();
                }
                catch (Exception e)
                {
                    failure = e;
                }
            });
            loader.Start();
            loader.Join();
        }
        return loaded ?? throw new InvalidOperationException($"wan-tiny's {what} did not load", failure);
    }

    /// <summary>The checkpoint as the reference's TF32 Conv3d saw it: <c>patch_embedding.weight</c> rounded to TF32.</summary>
    private sealed class Tf32PatchEmbedding(WeightSource checkpoint) : WeightSource(checkpoint.Device, checkpoint.DType)
    {
        protected override Tensor Load(string name, long[] shape)
        {
            using var weight = checkpoint.Parameter(name, shape);
            return name == "patch_embedding.weight" ? Tf32Rounded(weight) : weight.clone();
        }
    }
}

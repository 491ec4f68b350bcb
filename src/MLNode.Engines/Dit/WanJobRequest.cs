namespace MLNode.Engines.Dit;

/// <summary>
/// A text-to-video request as a caller sends it (vLLM-Omni's <c>/v1/videos</c> fields): anything left null takes the
/// model's default when <see cref="WanJobPlanner.Plan"/> turns it into a <see cref="WanJobSpec"/>.
/// <see cref="GuidanceScale"/> is the high-noise stage's scale and <see cref="GuidanceScale2"/> the low-noise stage's,
/// as vLLM-Omni's code applies them.
/// </summary>
public sealed record WanJobRequest(
    string Prompt,
    string? NegativePrompt = null,
    int? Width = null,
    int? Height = null,
    int? NumFrames = null,
    int? Fps = null,
    int? NumInferenceSteps = null,
    double? FlowShift = null,
    double? BoundaryRatio = null,
    double? GuidanceScale = null,
    double? GuidanceScale2 = null,
    string? SampleSolver = null,
    ulong? Seed = null);

/// <summary>
/// The values a request gets for the fields it leaves out: those of the official Wan2.2-T2V-A14B <c>generate.py</c>
/// (832×480, 81 frames at 16 fps, 40 steps, shift 12, boundary 0.875, guidance 4.0 / 3.0, its UniPC grid) and seed 42.
/// </summary>
public sealed record WanJobDefaults(
    int Width = 832,
    int Height = 480,
    int NumFrames = 81,
    int Fps = 16,
    int NumInferenceSteps = 40,
    double FlowShift = 12.0,
    double BoundaryRatio = 0.875,
    double GuidanceScaleHighNoise = 4.0,
    double GuidanceScaleLowNoise = 3.0,
    string SampleSolver = WanJobSpec.UniPcOfficial,
    ulong Seed = 42);

/// <summary>What a worker accepts: the largest job it will queue.</summary>
public sealed record WanJobLimits(int MaxFrames = 129, long MaxPixels = 1280L * 720, int MaxSteps = 100);

/// <summary>
/// What the loaded model pins in every job: its identity, its weights, the precision it runs in, and the shape
/// arithmetic of its VAE and patch embedding (video size ↔ latent ↔ patches).
/// </summary>
public sealed record WanModelFacts(
    string Model,
    string Revision,
    IReadOnlyList<WanWeightFile> Weights,
    string Precision,
    int LatentChannels,
    int VaeSpatialStride,
    int VaeTemporalStride,
    IReadOnlyList<int> PatchSize,
    WanDitFlops Flops)
{
    /// <summary>The facts of a diffusers-layout checkpoint: latent channels and strides from its VAE, patch size and FLOPs from its (high-noise) expert.</summary>
    public static WanModelFacts Of(string model, string revision, IReadOnlyList<WanWeightFile> weights, string precision, WanTransformerConfig dit, Vae.WanVaeConfig vae)
    {
        ArgumentNullException.ThrowIfNull(dit);
        ArgumentNullException.ThrowIfNull(vae);
        if (dit.InChannels != vae.ZDim)
            throw new InvalidDataException($"{model}: the transformer takes {dit.InChannels} latent channels, the VAE decodes {vae.ZDim}");
        return new WanModelFacts(model, revision, weights, precision, vae.ZDim, 1 << (vae.DimMult.Count - 1),
            1 << vae.TemperalDownsample.Count(down => down), dit.PatchSize, WanDitFlops.Of(dit));
    }

    /// <summary>Width and height must be multiples of this: the VAE's stride times the patch size.</summary>
    public int SizeMultiple => VaeSpatialStride * Math.Max(PatchSize[1], PatchSize[2]);

    /// <summary>The latent [C, T, h, w] of a video of <paramref name="frames"/> frames (1 + stride·k) at <paramref name="height"/>×<paramref name="width"/>.</summary>
    public long[] LatentShape(int frames, int height, int width) =>
        [LatentChannels, (frames - 1) / VaeTemporalStride + 1, height / VaeSpatialStride, width / VaeSpatialStride];

    /// <summary>N, the DiT's tokens: latent frames × patches per frame.</summary>
    public long LatentPatches(int frames, int height, int width)
    {
        var shape = LatentShape(frames, height, width);
        return shape[1] / PatchSize[0] * (shape[2] / PatchSize[1]) * (shape[3] / PatchSize[2]);
    }
}

/// <summary>
/// The FLOPs of one DiT forward over N latent patches, F(N) = α·N + β·N² + γ (spec §6.1: multiply-add = 2 FLOP,
/// biases and norms ignored): α = L(12D² + 4DF + 4·L_c·D) for the projections, FFN and cross-attention scores per
/// token, β = 4LD for self-attention's QKᵀ and AV, γ = 4L·L_c·D² + 2·L_c·(d_text·D + D²) for the context's K/V and
/// the text MLP, with L_c = 512 context rows.
/// </summary>
public sealed record WanDitFlops(double Alpha, double Beta, double Gamma)
{
    public static WanDitFlops Of(WanTransformerConfig config, int contextLength = Text.WanPromptTokens.TextLength)
    {
        ArgumentNullException.ThrowIfNull(config);
        double d = config.InnerDim, f = config.FfnDim, layers = config.NumLayers, lc = contextLength;
        return new WanDitFlops(
            layers * (12 * d * d + 4 * d * f + 4 * lc * d),
            4 * layers * d,
            4 * layers * lc * d * d + 2 * lc * (config.TextDim * d + d * d));
    }

    public double PerForward(long patches) => Alpha * patches + Beta * (double)patches * patches + Gamma;
}

/// <summary>
/// A job's price, known before it runs: <see cref="CostUnits"/> = forward passes × F(N) in FLOPs, where every step runs
/// the expert twice (conditional and unconditional branch of CFG).
/// </summary>
public sealed record WanJobCost(int ForwardPasses, long LatentPatches, double FlopsPerForward, double CostUnits)
{
    public static WanJobCost Of(WanJobSpec spec, WanModelFacts model)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(model);
        var patches = model.LatentPatches(spec.NumFrames, spec.Height, spec.Width);
        var passes = 2 * spec.NumInferenceSteps;
        var perForward = model.Flops.PerForward(patches);
        return new WanJobCost(passes, patches, perForward, passes * perForward);
    }
}

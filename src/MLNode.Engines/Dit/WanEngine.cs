using System.Text.Json;
using Microsoft.Extensions.Logging;
using MLNode.Engines.Dit.Poc;
using MLNode.Engines.Dit.Trajectory;
using MLNode.Engines.Hosting;
using MLNode.Engines.Llm;
using MLNode.Protocol.Diffusion;
using MLNode.Protocol.Poc;
using MLNode.Runtime.Checkpoints;
using MLNode.Runtime.Hub;
using MLNode.Runtime.Registry;
using MLNode.Runtime.Torch;
using static TorchSharp.torch;

namespace MLNode.Engines.Dit;

/// <summary>
/// Loads a diffusers-layout Wan2.2 text-to-video checkpoint (<c>tokenizer</c>, <c>text_encoder</c>, <c>transformer</c>
/// (high noise), <c>transformer_2</c> (low noise), <c>vae</c>, optionally <c>model_index.json</c>) into a
/// <see cref="WanExecutor"/>: umT5 and the experts' projections in the entry's dtype, the VAE in float32.
/// </summary>
public sealed class WanEngine(TorchRuntime runtime, ILoggerFactory loggers) : IExecutorFactory
{
    public const string Architecture = "wan2.2";

    public bool Supports(Modality modality, string architecture) => modality == Modality.Dit && architecture == Architecture;

    public Task<IModelExecutor> LoadAsync(ModelLoadRequest request, CancellationToken ct) => Task.Run<IModelExecutor>(() =>
    {
        var folder = request.Folder;
        var entry = request.Entry;
        foreach (var part in new[] { "tokenizer", "text_encoder", "transformer", "transformer_2", "vae" })
            if (!Directory.Exists(Path.Combine(folder, part)))
                throw new ModelLoadException($"{entry.Id}: no '{part}' folder in {folder}; a Wan2.2 T2V checkpoint in the diffusers layout has one");
        var logger = loggers.CreateLogger<WanEngine>();
        var dtype = DTypes.Parse(entry.Dtype);
        var defaults = Defaults(folder);

        var pipeline = WanPipeline.Load(folder, runtime.Device, dtype, logger, ct);
        var (text, high, low, vae) = (pipeline.Text, pipeline.HighNoiseExpert, pipeline.LowNoiseExpert, pipeline.Vae);

        // The files the host verified before loading: the registry's list, or the hub's LFS hashes of the snapshot,
        // whose folder name is the commit the revision resolved to.
        var weights = (entry.Files ?? HubCache.LfsFiles(folder)).Select(f => new WanWeightFile(f.Path, f.Sha256)).ToArray();
        var revision = entry.Source == ModelSource.Hub ? Path.GetFileName(Path.TrimEndingDirectorySeparator(folder)) : entry.Revision;
        var facts = WanModelFacts.Of(entry.Id, revision, weights, PrecisionProfile(entry.Dtype), high.Config, vae.Config);
        if (PricedByRegistry(entry) is { } priced) facts = facts with { Flops = priced };
        var card = new ModelCard(entry.Id, Modality.Dit, entry.Architecture, entry.Dtype, runtime.Device.ToString(), folder, entry.Limits,
            LlmEngine.ParameterCount(text.Encoder) + LlmEngine.ParameterCount(high) + LlmEngine.ParameterCount(low) + LlmEngine.ParameterCount(vae),
            entry.Pricing);
        var planner = new WanJobPlanner(facts, defaults, new WanJobLimits());
        // PoC routes nonces over the official 40-step grid at the checkpoint's boundary (docs/wan-poc-routing.md).
        var schedule = new WanPocSchedule(WanPocSchedule.T2VA14B.Timesteps, (int)Math.Round(planner.Defaults.BoundaryRatio * WanPocSchedule.TrainTimesteps));
        var poc = new WanPocProver(high, low, schedule, WanPocGeometry.T2VA14B, logger);
        return new WanExecutor(card, pipeline, planner, poc);
    }, ct);

    /// <summary>
    /// What a job's numbers depend on besides its weights: umT5 and the experts' projections in the entry's dtype; the
    /// residual stream, norms, modulation and head in float32; the VAE in float32 with TF32 convolutions off.
    /// </summary>
    public static string PrecisionProfile(string dtype) => $"text:{dtype};dit-projections:{dtype};dit-residual:float32;vae:float32;tf32:off";

    /// <summary>The chain's α, β, γ when the registry sets them (pricing alpha/beta/gamma); otherwise they follow from the expert's config.</summary>
    private static WanDitFlops? PricedByRegistry(ModelEntry entry) =>
        entry.Pricing.TryGetValue("alpha", out var alpha) && entry.Pricing.TryGetValue("beta", out var beta) && entry.Pricing.TryGetValue("gamma", out var gamma)
            ? new WanDitFlops(alpha, beta, gamma)
            : null;

    /// <summary>The official defaults, with the boundary ratio the checkpoint's model_index.json ships (0.875 for A14B) when it names one.</summary>
    private static WanJobDefaults Defaults(string folder)
    {
        var defaults = new WanJobDefaults();
        var path = Path.Combine(folder, "model_index.json");
        if (!File.Exists(path)) return defaults;
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        var json = ConfigJsonReader.Root(document.RootElement, path);
        return json.OptionalDouble("boundary_ratio") is { } boundary ? defaults with { BoundaryRatio = boundary } : defaults;
    }
}

/// <summary>
/// A loaded Wan2.2 text-to-video model. One job runs at a time (the caller queues them); the experts are exposed so the
/// DiT PoC can run on the same weights.
/// </summary>
public sealed class WanExecutor(ModelCard card, WanPipeline pipeline, WanJobPlanner planner, WanPocProver poc) : IVideoExecutor
{
    public ModelCard Card { get; } = card;
    public WanPipeline Pipeline { get; } = pipeline;
    public WanJobPlanner Planner { get; } = planner;

    public WanTransformer3DModel HighNoiseExpert => Pipeline.HighNoiseExpert;
    public WanTransformer3DModel LowNoiseExpert => Pipeline.LowNoiseExpert;

    /// <summary>DiT PoC on the same two experts (docs/wan-poc.md).</summary>
    public IPocProver? Poc { get; } = poc;

    /// <summary>A job's attention shapes are fixed for all its steps; cuDNN's kernel ran an A14B expert at N = 32,760 in 3.34 s against 4.28 s without it (H100, benchmarks/README.md).</summary>
    public bool UsesCudnnAttention => true;

    public Task<WanGeneration> GenerateAsync(WanJobSpec spec, Action<WanStepProgress>? onStep, StepStateStore? states, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Model != Card.Id) throw new WanJobException("model", $"the job is for '{spec.Model}', this worker serves '{Card.Id}'");
        return Task.Run(() => Pipeline.Generate(spec, Planner.Model, onStep, states, ct), ct);
    }

    public Task<WanVideo> DecodeAsync(Tensor latent, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(latent);
        return Task.Run(() => Pipeline.DecodeFrames(latent, ct), ct);
    }

    public Task<RevealVerification> VerifyRevealAsync(WanJobSpec spec, TrajectoryCommitment commitment, RevealBundle reveal, string beacon, int count, CancellationToken ct) =>
        Task.Run(() => new StepRevealVerifier(Pipeline, Planner.Model).Verify(spec, commitment, reveal, beacon, count, ct), ct);

    public ValueTask DisposeAsync()
    {
        Pipeline.Text.Encoder.Dispose();
        Pipeline.HighNoiseExpert.Dispose();
        Pipeline.LowNoiseExpert.Dispose();
        Pipeline.Vae.Dispose();
        return ValueTask.CompletedTask;
    }
}

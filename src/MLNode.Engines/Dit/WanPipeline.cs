using System.Diagnostics;
using Microsoft.Extensions.Logging;
using MLNode.Engines.Dit.Sampling;
using MLNode.Engines.Dit.Text;
using MLNode.Engines.Dit.Trajectory;
using MLNode.Engines.Dit.Vae;
using MLNode.Protocol.Diffusion;
using MLNode.Protocol.Poc;
using MLNode.Runtime.Diffusion;
using static TorchSharp.torch;

namespace MLNode.Engines.Dit;

/// <summary>One finished denoising step: step <see cref="Step"/> (1-based) of <see cref="Steps"/>, with the time so far and an estimate of the rest.</summary>
public sealed record WanStepProgress(int Step, int Steps, int Timestep, int Expert, TimeSpan Elapsed, TimeSpan Remaining);

/// <summary>
/// A job's video as 8-bit RGB frames, <see cref="Frames"/> = [F, H, W, 3] row-major bytes: the canonical frames every
/// output format and hash is made from.
/// </summary>
public sealed record WanVideo(byte[] Frames, int FrameCount, int Height, int Width)
{
    public const int Channels = 3;

    public int FrameBytes => Height * Width * Channels;
}

/// <summary>A job's canonical frames and the commitment to the trajectory that made them.</summary>
public sealed record WanGeneration(WanVideo Video, TrajectoryCommitment Trajectory);

/// <summary>A job's final latent x0 [C, T, h, w] (float32, on the pipeline's device; disposed with this) and its trajectory commitment.</summary>
public sealed record WanDenoising(Tensor FinalLatent, TrajectoryCommitment Trajectory) : IDisposable
{
    public void Dispose() => FinalLatent.Dispose();
}

/// <summary>
/// Wan2.2 text-to-video: the prompt and the negative prompt through umT5, the seed's portable noise (<see cref="LatentNoise"/>),
/// then FlowUniPC over the high-noise expert above the boundary timestep and the low-noise expert below it, each step one
/// batched forward of [conditional, unconditional] combined by CFG, and the VAE's decode truncated to uint8 as the
/// official <c>save_video</c> does.
/// </summary>
public sealed class WanPipeline(WanTextEncoder text, WanTransformer3DModel highNoiseExpert, WanTransformer3DModel lowNoiseExpert, WanVaeDecoder vae, Device device)
{
    public WanTextEncoder Text { get; } = text;
    public WanTransformer3DModel HighNoiseExpert { get; } = highNoiseExpert;
    public WanTransformer3DModel LowNoiseExpert { get; } = lowNoiseExpert;
    public WanVaeDecoder Vae { get; } = vae;
    public Device Device { get; } = device;

    /// <summary>
    /// A diffusers-layout Wan2.2 T2V checkpoint folder (<c>text_encoder</c> and <c>tokenizer</c>, <c>transformer</c> (high
    /// noise), <c>transformer_2</c> (low noise), <c>vae</c>) on <paramref name="device"/>: umT5 and the experts'
    /// projections in <paramref name="dtype"/>, the VAE in float32.
    /// </summary>
    public static WanPipeline Load(string folder, Device device, ScalarType dtype, ILogger logger, CancellationToken cancellationToken = default)
    {
        var text = WanTextEncoder.Load(folder, device, dtype, logger, cancellationToken);
        var high = WanTransformer3DModel.Load(Path.Combine(folder, "transformer"), device, dtype, logger, cancellationToken);
        var low = WanTransformer3DModel.Load(Path.Combine(folder, "transformer_2"), device, dtype, logger, cancellationToken);
        var vae = WanVaeDecoder.Load(Path.Combine(folder, "vae"), device, logger, cancellationToken);
        return new WanPipeline(text, high, low, vae, device);
    }

    /// <summary>This pipeline's text encoder and VAE with other experts (on the same device).</summary>
    public WanPipeline WithExperts(WanTransformer3DModel highNoise, WanTransformer3DModel lowNoise) => new(Text, highNoise, lowNoise, Vae, Device);

    /// <summary>The job's initial latent [C, T, h, w]: torch CUDA <c>randn</c> of that shape seeded with the job's seed.</summary>
    public static Tensor InitialNoise(WanJobSpec spec, WanModelFacts model, Device device)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(model);
        if (spec.Noise != WanJobSpec.NoiseAlgorithm) throw new WanJobException("noise", $"unknown noise algorithm '{spec.Noise}'");
        return LatentNoise.Randn(model.LatentShape(spec.NumFrames, spec.Height, spec.Width), spec.Seed, device);
    }

    /// <summary>
    /// The job end to end: <see cref="Denoise"/> with its trajectory commitment, then <see cref="DecodeFrames"/> of the
    /// final latent.
    /// </summary>
    public WanGeneration Generate(WanJobSpec spec, WanModelFacts model, Action<WanStepProgress>? onStep, StepStateStore? states, CancellationToken cancellationToken)
    {
        using var denoised = Denoise(spec, model, onStep, states, cancellationToken);
        cancellationToken.ThrowIfCancellationRequested();
        return new WanGeneration(DecodeFrames(denoised.FinalLatent, cancellationToken), denoised.Trajectory);
    }

    /// <summary>
    /// Runs the job's sampler to its final latent x0 and commits to its trajectory: every step's record (hash of x̃_k ‖ m_k,
    /// sketches of x̃_k and v_k) and the final latent, with the states a challenge replays written to
    /// <paramref name="states"/> when given.
    /// </summary>
    public WanDenoising Denoise(WanJobSpec spec, WanModelFacts model, Action<WanStepProgress>? onStep, StepStateStore? states, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var contexts = Contexts(spec, cancellationToken);
        var guidance = Guidance(spec);
        using var sampler = new FlowUniPcSampler(Schedule(spec));
        var latent = InitialNoise(spec, model, Device);
        var trajectory = new TrajectoryRecorder(spec.JobId, latent.shape, JlSketch.Default, states);

        var clock = Stopwatch.StartNew();
        for (var step = 1; !sampler.IsFinished; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var stepScope = NewDisposeScope();
            var timestep = sampler.Timestep;
            var expert = guidance.Expert(timestep);
            var velocity = Velocity(latent, timestep, guidance, contexts, cancellationToken);
            // Step replaces the sampler's last sample; the record needs the one this step starts from.
            var lastSample = sampler.LastSample?.clone();
            var next = sampler.Step(velocity, latent);
            trajectory.Record(new TrajectoryStep(step - 1, timestep, expert, guidance.Guidance(timestep), latent, lastSample, velocity, sampler.PreviousX0Prediction!));
            latent = next.MoveToOuterDisposeScope();
            var elapsed = clock.Elapsed;
            onStep?.Invoke(new WanStepProgress(step, sampler.Schedule.Steps, timestep, expert, elapsed, elapsed / step * (sampler.Schedule.Steps - step)));
        }
        var commitment = trajectory.Finish(latent);
        return new WanDenoising(latent.MoveToOuterDisposeScope(), commitment);
    }

    /// <summary>
    /// A final latent [C, T, h, w] (float32) as canonical frames: the VAE's decode truncated to uint8. The VAE is causal,
    /// so the first T' latent frames alone decode to exactly the first 1 + 4(T' − 1) frames of the whole latent's video.
    /// </summary>
    public WanVideo DecodeFrames(Tensor latent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(latent);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var video = Vae.Decode(latent, cancellationToken);
        // [3, F, H, W] → [F, H, W, 3]: frames of interleaved RGB, as encoders and image files take them.
        var frames = VideoQuantizer.ToUInt8(video).permute(1, 2, 3, 0).contiguous().cpu();
        return new WanVideo(frames.bytes.ToArray(), (int)frames.shape[0], (int)frames.shape[1], (int)frames.shape[2]);
    }

    /// <summary>The job's sampler grid: its steps and shift on the grid its solver names.</summary>
    public static FlowSigmaSchedule Schedule(WanJobSpec spec) => FlowSigmaSchedule.Create(spec.NumInferenceSteps, spec.FlowShift, spec.Grid);

    /// <summary>The job's split of steps between the experts and their guidance scales.</summary>
    public static WanExpertGuidance Guidance(WanJobSpec spec) =>
        WanExpertGuidance.FromBoundaryRatio(spec.BoundaryRatio, spec.GuidanceScaleHighNoise, spec.GuidanceScaleLowNoise);

    /// <summary>The umT5 encodings of the prompt and the negative prompt, stacked [2, L, D] on the device.</summary>
    public Tensor Contexts(WanJobSpec spec, CancellationToken cancellationToken)
    {
        using var scope = NewDisposeScope();
        return stack([
            Text.Encode(spec.Prompt, cancellationToken: cancellationToken).to(Device),
            Text.Encode(spec.NegativePrompt, cancellationToken: cancellationToken).to(Device),
        ]).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The guided velocity v at <paramref name="latent"/>: one batched forward of [conditional, unconditional] through the
    /// timestep's expert, combined by its guidance scale. The executor's step and a validator's replay of it share this.
    /// </summary>
    public Tensor Velocity(Tensor latent, int timestep, WanExpertGuidance guidance, Tensor contexts, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(guidance);
        using var scope = NewDisposeScope();
        var dit = guidance.Expert(timestep) == WanRouting.HighNoiseExpert ? HighNoiseExpert : LowNoiseExpert;
        var branches = dit.Forward(stack([latent, latent]), tensor(new long[] { timestep, timestep }, device: Device), contexts, cancellationToken);
        return guidance.Guide(branches[0], branches[1], timestep).MoveToOuterDisposeScope();
    }
}

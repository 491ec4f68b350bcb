using System.Diagnostics;
using MLNode.Engines.Dit.Sampling;
using MLNode.Engines.Dit.Text;
using MLNode.Engines.Dit.Vae;
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

    /// <summary>The job's initial latent [C, T, h, w]: torch CUDA <c>randn</c> of that shape seeded with the job's seed.</summary>
    public static Tensor InitialNoise(WanJobSpec spec, WanModelFacts model, Device device)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(model);
        if (spec.Noise != WanJobSpec.NoiseAlgorithm) throw new WanJobException("noise", $"unknown noise algorithm '{spec.Noise}'");
        return LatentNoise.Randn(model.LatentShape(spec.NumFrames, spec.Height, spec.Width), spec.Seed, device);
    }

    /// <summary>The job end to end: <see cref="Denoise"/>, then <see cref="DecodeFrames"/>.</summary>
    public WanVideo Generate(WanJobSpec spec, WanModelFacts model, Action<WanStepProgress>? onStep, CancellationToken cancellationToken)
    {
        using var latent = Denoise(spec, model, onStep, cancellationToken);
        cancellationToken.ThrowIfCancellationRequested();
        return DecodeFrames(latent, cancellationToken);
    }

    /// <summary>The sampler's final latent x0 [C, T, h, w] (float32, on <see cref="Device"/>): the job before the VAE.</summary>
    public Tensor Denoise(WanJobSpec spec, WanModelFacts model, Action<WanStepProgress>? onStep, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var contexts = stack([
            Text.Encode(spec.Prompt, cancellationToken: cancellationToken).to(Device),
            Text.Encode(spec.NegativePrompt, cancellationToken: cancellationToken).to(Device),
        ]);
        var guidance = WanExpertGuidance.FromBoundaryRatio(spec.BoundaryRatio, spec.GuidanceScaleHighNoise, spec.GuidanceScaleLowNoise);
        using var sampler = new FlowUniPcSampler(FlowSigmaSchedule.Create(spec.NumInferenceSteps, spec.FlowShift, spec.Grid));
        var latent = InitialNoise(spec, model, Device);

        var clock = Stopwatch.StartNew();
        for (var step = 1; !sampler.IsFinished; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var stepScope = NewDisposeScope();
            var timestep = sampler.Timestep;
            var expert = guidance.Expert(timestep);
            var dit = expert == WanRouting.HighNoiseExpert ? HighNoiseExpert : LowNoiseExpert;
            var branches = dit.Forward(stack([latent, latent]), tensor(new long[] { timestep, timestep }, device: Device), contexts, cancellationToken);
            var velocity = guidance.Guide(branches[0], branches[1], timestep);
            latent = sampler.Step(velocity, latent).MoveToOuterDisposeScope();
            var elapsed = clock.Elapsed;
            onStep?.Invoke(new WanStepProgress(step, sampler.Schedule.Steps, timestep, expert, elapsed, elapsed / step * (sampler.Schedule.Steps - step)));
        }
        return latent.MoveToOuterDisposeScope();
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
}

namespace MLNode.Engines.Dit.Validation;

/// <summary>
/// Thresholds of the video validation modes (configuration section "VideoValidation"), named after spec §5.6:
/// τ_ph for pHash Hamming distances, τ_dec and τ_ssim for the decode check, the looser end-to-end bounds of a
/// regeneration, and τ_v, τ_x and the exact-arithmetic bounds of V1's step challenges. τ_v and τ_x come from the
/// calibration on wan-tiny (CPU: float32 against bfloat16); each default says what it rests on.
/// docs/wan-validation.md explains what each check catches and holds the calibration.
/// </summary>
public sealed class VideoValidationOptions
{
    public const string Section = "VideoValidation";

    /// <summary>
    /// τ_ph of V0: the most pHash bits (of 64) a delivered frame may differ from the manifest's. Codec loss moves a few
    /// bits (H.264 CRF 18 on wan-tiny's noise-like frames: at most 2); Crynux allowed 5, later 24, across GPUs.
    /// </summary>
    public int PHashMaxBits { get; set; } = 10;

    /// <summary>The share of frames that must be within <see cref="PHashMaxBits"/> (spec §5.6 (D): 99%).</summary>
    public double PHashMinFrameFraction { get; set; } = 0.99;

    /// <summary>
    /// τ_dec: the least mean PSNR (dB) between the revealed latent's frames and the delivered ones. An MP4 at CRF 18
    /// keeps natural video at 35–45 dB; a different latent lands near 10–15 dB (spec §5.4).
    /// </summary>
    public double DecodeMinMeanPsnrDb { get; set; } = 30;

    /// <summary>τ_ssim: the least SSIM of any frame in the decode check (honest cross-stack runs: 0.90–0.98, spec §5.4).</summary>
    public double DecodeMinSsim { get; set; } = 0.90;

    /// <summary>The most pHash bits any frame of the decode check may differ by.</summary>
    public int DecodePHashMaxBits { get; set; } = 10;

    /// <summary>
    /// Latent frames the decode check decodes (0: all). The VAE is causal, so a prefix of n latent frames gives exactly
    /// the first 1 + 4(n − 1) frames at a fraction of the cost.
    /// </summary>
    public int DecodeLatentFrames { get; set; }

    /// <summary>
    /// The least mean PSNR (dB) of a regeneration against the delivered frames: end to end, where honest numeric noise
    /// compounds over the steps (sglang's honest cross-stack band: 30–40 dB; a different model: about 10 dB).
    /// </summary>
    public double RegenerationMinMeanPsnrDb { get; set; } = 25;

    /// <summary>The least SSIM of any regenerated frame.</summary>
    public double RegenerationMinSsim { get; set; } = 0.80;

    /// <summary>The most pHash bits any regenerated frame may differ by.</summary>
    public int RegenerationPHashMaxBits { get; set; } = 16;

    /// <summary>
    /// How many steps a v1 request's reveal answers when the request names no count: the executor's default
    /// (<c>Video:ChallengeSteps</c>), one step of each expert. Never more than the job's steps.
    /// </summary>
    public int ChallengeSteps { get; set; } = 2;

    /// <summary>
    /// τ_v: the largest e_v = ‖JL(v_val) − u_k‖ / ‖JL(v_val)‖ of a challenged step. Calibrated on wan-tiny
    /// (<c>mlnode-bench wan-calibrate</c>, docs/wan-validation.md): an executor with bfloat16 projections against this
    /// float32 validator reached 3.26e-3 over 64 steps; twice that, rounded up. It rejects 1% noise on the experts'
    /// weights (e_v ≥ 0.012 at every step) and every cheat that changes the velocity's step; the GPU run re-checks it.
    /// </summary>
    public double StepMaxVelocityError { get; set; } = 6.6e-3;

    /// <summary>
    /// τ_x: the largest e_x = ‖x̃_{k+1}^val − x̃_{k+1}‖ / ‖x̃_{k+1}‖ of a challenged step. Calibrated like τ_v: bfloat16
    /// reached 5.27e-4 (at the last step; e_x grows with the step's size σ_k − σ_{k+1}); twice that, rounded up.
    /// </summary>
    public double StepMaxError { get; set; } = 1.1e-3;

    /// <summary>
    /// The largest error of the sampler's arithmetic replayed on the executor's own tensors (the step from its revealed
    /// velocity, and the previous step's predictor from its revealed last sample): float32 element-wise ops that every
    /// IEEE device rounds alike up to a fused multiply-add, so 0 on one device and ~1e-7 across devices.
    /// </summary>
    public double StepMaxReplayError { get; set; } = 1e-5;

    /// <summary>
    /// The largest distance of a committed sketch (s_k, u_k) from the validator's sketch of the revealed tensor: fp16
    /// rounding of the same float32 sketch is 0 on one device; across devices the projection's noise (≤ 4e-6) and the
    /// dot products' order move a value by ≈ 1e-6 relative, which can flip an fp16 rounding (≤ 2^-11 of one value).
    /// </summary>
    public double SketchMaxError { get; set; } = 1e-3;

    /// <summary>
    /// The largest ‖x̃_0 − noise‖ / ‖noise‖ of a revealed x̃_0 against the job's seeded noise: the C# Philox reference and
    /// the CUDA kernel agree within 4e-6 per value; another seed is ≈ √2.
    /// </summary>
    public double NoiseMaxError { get; set; } = 1e-4;

    /// <summary>Largest uploaded video or latent file (a 720p, 129-frame video's raw frames are 357 MB).</summary>
    public long MaxUploadBytes { get; set; } = 512L << 20;

    /// <summary>The first setting that cannot work, or null.</summary>
    public string? Problem() =>
        PHashMaxBits is < 0 or > 64 ? "VideoValidation:PHashMaxBits must be in 0..64"
        : DecodePHashMaxBits is < 0 or > 64 ? "VideoValidation:DecodePHashMaxBits must be in 0..64"
        : RegenerationPHashMaxBits is < 0 or > 64 ? "VideoValidation:RegenerationPHashMaxBits must be in 0..64"
        : !(PHashMinFrameFraction is >= 0 and <= 1) ? "VideoValidation:PHashMinFrameFraction must be in [0, 1]"
        : !(DecodeMinSsim is >= -1 and <= 1) || !(RegenerationMinSsim is >= -1 and <= 1) ? "VideoValidation: SSIM thresholds must be in [-1, 1]"
        : !double.IsFinite(DecodeMinMeanPsnrDb) || !double.IsFinite(RegenerationMinMeanPsnrDb) ? "VideoValidation: PSNR thresholds must be finite"
        : DecodeLatentFrames < 0 ? "VideoValidation:DecodeLatentFrames must be 0 (all) or positive"
        : ChallengeSteps < 1 ? "VideoValidation:ChallengeSteps must be positive"
        : !(StepMaxVelocityError >= 0) || !(StepMaxError >= 0) || !(StepMaxReplayError >= 0) || !(SketchMaxError >= 0) || !(NoiseMaxError >= 0)
            ? "VideoValidation: step, sketch and noise error bounds must be non-negative numbers"
        : MaxUploadBytes <= 0 ? "VideoValidation:MaxUploadBytes must be positive"
        : null;
}

namespace MLNode.Engines.Dit.Validation;

/// <summary>
/// Thresholds of the video validation modes (configuration section "VideoValidation"), named after spec §5.6:
/// τ_ph for pHash Hamming distances, τ_dec and τ_ssim for the decode check, and the looser end-to-end bounds of a
/// regeneration. Every default is provisional until the calibration grid of spec §5.6 (E) has run; each says what it
/// rests on. docs/wan-validation.md explains what each check catches.
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
        : MaxUploadBytes <= 0 ? "VideoValidation:MaxUploadBytes must be positive"
        : null;
}

using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Asr.Audio;

/// <summary>
/// Whisper's log-mel front end, as Hugging Face's <c>WhisperFeatureExtractor</c> computes it (and Qwen3-ASR, which
/// uses the same extractor without the 30 s padding):
/// <code>
///   X    = STFT(x, n_fft 400, hop 160, periodic Hann, centred, reflect-padded), last frame dropped
///   mel  = F · |X|²                       F: Slaney-scale, Slaney-normalised triangles over 0–8 kHz
///   L    = log10(max(mel, 1e-10));  L = max(L, max(L) − 8);  out = (L + 4) / 4
/// </code>
/// The max runs over what is passed in: one window (HF, per-window) or the whole file plus 30 s of zeros
/// (openai-whisper's <c>transcribe</c>, whose windows are then sliced from it).
/// </summary>
public sealed class LogMelSpectrogram
{
    public const int SampleRate = 16000;
    public const int FftSize = 400;
    public const int HopLength = 160;

    /// <summary>30 s: the length of one Whisper window in samples.</summary>
    public const int WindowSamples = 480_000;

    /// <summary>Frequency bins of a 400-point real FFT: 0 … 8 kHz.</summary>
    public const int FrequencyBins = FftSize / 2 + 1;

    private readonly float[] _filters;

    public LogMelSpectrogram(int melBins)
    {
        if (melBins <= 0) throw new ArgumentOutOfRangeException(nameof(melBins), melBins, "needs at least one mel bin");
        MelBins = melBins;
        _filters = SlaneyFilters(melBins);
    }

    public int MelBins { get; }

    /// <summary>The filter bank F, float32 [mel bins, 201] (row-major), as librosa and the HF port build it.</summary>
    public ReadOnlySpan<float> Filters => _filters;

    /// <summary>
    /// Features of one window: <paramref name="samples"/> zero-padded on the right to <paramref name="padTo"/> (null: as they are),
    /// clamped against the window's own maximum. float32 [mel bins, max(length, padTo) / 160] on <paramref name="device"/>.
    /// </summary>
    public Tensor Window(ReadOnlySpan<float> samples, int? padTo, Device device)
    {
        var length = Math.Max(samples.Length, padTo ?? 0);
        // Reflect padding of the centred STFT needs more than n_fft/2 samples; Whisper windows always have them.
        if (length <= FftSize / 2)
            throw new ArgumentException($"audio of {length} samples is too short for a {FftSize}-point centred STFT (needs more than {FftSize / 2})", nameof(samples));
        var padded = new float[length];
        samples.CopyTo(padded);
        return Features(padded, device);
    }

    /// <summary>
    /// openai-whisper's whole-file features: the samples followed by 30 s of zeros, clamped against the file-global
    /// maximum. float32 [mel bins, (length + 480000) / 160]; window k is columns [seek, seek + 3000).
    /// </summary>
    public Tensor WholeFile(ReadOnlySpan<float> samples, Device device)
    {
        var padded = new float[samples.Length + WindowSamples];
        samples.CopyTo(padded);
        return Features(padded, device);
    }

    private Tensor Features(float[] samples, Device device)
    {
        using var scope = NewDisposeScope();
        var x = tensor(samples, device: device);
        var window = hann_window(FftSize, periodic: true, dtype: ScalarType.Float32, device: device);
        var spectrum = stft(x, FftSize, HopLength, window: window, center: true, pad_mode: PaddingModes.Reflect, return_complex: true);
        var frames = spectrum.shape[1] - 1;
        var power = spectrum.narrow(1, 0, frames).abs().pow(2);
        var filters = tensor(_filters, [MelBins, FrequencyBins], device: device);
        var log = filters.matmul(power).clamp_min(1e-10).log10();
        log = maximum(log, log.max() - 8.0);
        return ((log + 4.0) / 4.0).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Triangular filters equally spaced on the Slaney mel scale (linear below 1 kHz, logarithmic above) from 0 Hz to
    /// the Nyquist frequency, each scaled by 2 / (its bandwidth in Hz) so every filter has unit area. Computed in
    /// double and rounded once, as the reference rounds its float64 bank to float32.
    /// </summary>
    private static float[] SlaneyFilters(int melBins)
    {
        var nyquist = SampleRate / 2.0;
        var melMax = HertzToMel(nyquist);
        var edges = Enumerable.Range(0, melBins + 2).Select(i => MelToHertz(melMax * i / (melBins + 1))).ToArray();
        var filters = new float[melBins * FrequencyBins];
        for (var m = 0; m < melBins; m++)
        {
            var (lower, centre, upper) = (edges[m], edges[m + 1], edges[m + 2]);
            var norm = 2.0 / (upper - lower);
            for (var k = 0; k < FrequencyBins; k++)
            {
                var f = nyquist * k / (FrequencyBins - 1);
                var rising = (f - lower) / (centre - lower);
                var falling = (upper - f) / (upper - centre);
                filters[m * FrequencyBins + k] = (float)(Math.Max(0, Math.Min(rising, falling)) * norm);
            }
        }
        return filters;
    }

    private const double LinearHertzPerMel = 200.0 / 3;
    private const double LogStartHertz = 1000.0;
    private const double LogStartMel = LogStartHertz / LinearHertzPerMel;
    private static readonly double MelsPerLogHertz = 27.0 / Math.Log(6.4);

    private static double HertzToMel(double hertz) =>
        hertz < LogStartHertz ? hertz / LinearHertzPerMel : LogStartMel + Math.Log(hertz / LogStartHertz) * MelsPerLogHertz;

    private static double MelToHertz(double mel) =>
        mel < LogStartMel ? mel * LinearHertzPerMel : LogStartHertz * Math.Exp((mel - LogStartMel) / MelsPerLogHertz);
}

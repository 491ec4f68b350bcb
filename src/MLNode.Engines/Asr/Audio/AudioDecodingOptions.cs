namespace MLNode.Engines.Asr.Audio;

/// <summary>Limits of an upload and the FFmpeg tools that decode it (configuration section "Audio").</summary>
public sealed class AudioDecodingOptions
{
    public const string Section = "Audio";

    /// <summary>Largest upload accepted, as vLLM's <c>VLLM_MAX_AUDIO_CLIP_FILESIZE_MB</c> (25 MiB).</summary>
    public long MaxUploadBytes { get; set; } = 25L << 20;

    /// <summary>Longest decoded audio accepted (20 minutes).</summary>
    public double MaxDurationSeconds { get; set; } = 1200;

    /// <summary>The ffmpeg executable: a path, or a name looked up on PATH.</summary>
    public string FFmpegPath { get; set; } = "ffmpeg";

    /// <summary>The ffprobe executable; by default the one beside <see cref="FFmpegPath"/>.</summary>
    public string? FFprobePath { get; set; }

    /// <summary>Wall time one decode may take before the upload is refused as undecodable.</summary>
    public double DecodeTimeoutSeconds { get; set; } = 120;

    /// <summary>Where uploads are written for FFmpeg to read (containers such as MP4 need a seekable file).</summary>
    public string? TempDirectory { get; set; }

    public long MaxSamples => (long)Math.Floor(MaxDurationSeconds * CanonicalAudio.SampleRate);

    public string ResolvedFFprobePath => FFprobePath ?? ExternalTool.Beside(FFmpegPath, "ffprobe");

    /// <summary>The first setting that cannot work, or null.</summary>
    public string? Problem() =>
        MaxUploadBytes <= 0 ? "Audio:MaxUploadBytes must be positive"
        : !(MaxDurationSeconds > 0 && double.IsFinite(MaxDurationSeconds)) ? "Audio:MaxDurationSeconds must be a positive number"
        : !(DecodeTimeoutSeconds > 0 && double.IsFinite(DecodeTimeoutSeconds)) ? "Audio:DecodeTimeoutSeconds must be a positive number"
        : string.IsNullOrWhiteSpace(FFmpegPath) ? "Audio:FFmpegPath must name the ffmpeg executable"
        : null;
}

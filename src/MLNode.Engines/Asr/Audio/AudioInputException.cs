namespace MLNode.Engines.Asr.Audio;

/// <summary>What is wrong with an upload; <see cref="TooLarge"/> and <see cref="TooLong"/> are over a limit, the rest unusable.</summary>
public enum AudioProblem
{
    /// <summary>No bytes, or a stream that decodes to no samples.</summary>
    Empty,

    /// <summary>More bytes than <see cref="AudioDecodingOptions.MaxUploadBytes"/>.</summary>
    TooLarge,

    /// <summary>Decodes to more than <see cref="AudioDecodingOptions.MaxDurationSeconds"/>.</summary>
    TooLong,

    /// <summary>Not a container FFmpeg can read among the accepted formats (garbage, text, a truncated header).</summary>
    NotMedia,

    /// <summary>A readable container without an audio stream (a silent video).</summary>
    NoAudioStream,

    /// <summary>The audio stream could not be decoded (unsupported codec, damaged data, timeout, non-finite samples).</summary>
    Undecodable,
}

/// <summary>An upload that cannot become canonical audio, for a reason the caller can fix (an HTTP 400 or 413).</summary>
public sealed class AudioInputException(AudioProblem problem, string message) : Exception(message)
{
    public AudioProblem Problem { get; } = problem;

    public bool OverLimit => Problem is AudioProblem.TooLarge or AudioProblem.TooLong;
}

/// <summary>The decoder itself cannot run (FFmpeg missing or broken): a fault of this node, not of the upload.</summary>
public sealed class AudioDecoderUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace MLNode.Engines.Asr.Audio;

/// <summary>
/// Turns an upload (wav, flac, mp3, ogg/opus, m4a/mp4, webm) into <see cref="CanonicalAudio"/>: 16 kHz mono float32 PCM
/// from FFmpeg with every option that affects the samples pinned, so an executor and a validator running the same FFmpeg
/// build get the same bits and the same SHA-256. docs/audio.md explains each option.
/// </summary>
public sealed class CanonicalAudioDecoder(AudioDecodingOptions options, ILogger<CanonicalAudioDecoder> logger)
{
    /// <summary>Demuxers FFmpeg may use: the accepted formats only, so a playlist or concat script cannot pull in other files.</summary>
    public const string Demuxers = "wav,flac,mp3,ogg,mov,mp4,m4a,3gp,3g2,mj2,matroska,webm";

    /// <summary>
    /// The only filter: libswresample converting to 16 kHz, mono, float, with its defaults written out (a later FFmpeg
    /// changing a default does not change our samples), except <c>rematrix_maxval=1</c>, which normalises the downmix
    /// so that stereo becomes (L + R) / 2 — what openai-whisper's s16 path and librosa's <c>mono=True</c> give.
    /// </summary>
    public static readonly string ResampleFilter = "aresample=" + string.Join(':',
        "resampler=swr", "osr=16000", "osf=flt", "ochl=mono", "tsf=fltp",
        "filter_type=kaiser", "kaiser_beta=9", "filter_size=32", "phase_shift=10", "linear_interp=1", "exact_rational=1", "cutoff=0.97",
        "dither_method=0", "rematrix_maxval=1", "clev=0.707107", "slev=0.707107", "lfe_mix_level=0", "async=0");

    public AudioDecodingOptions Options => options;

    /// <summary>ffmpeg's arguments: first audio stream only, plain-C code paths, one thread, raw little-endian float32 to stdout.</summary>
    public static IReadOnlyList<string> DecodeArguments(string input) =>
    [
        "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error",
        "-cpuflags", "0", "-filter_threads", "1",
        "-threads", "1", "-flags", "+bitexact", "-protocol_whitelist", "file", "-format_whitelist", Demuxers,
        "-i", input,
        "-map", "0:a:0", "-af", ResampleFilter, "-c:a", "pcm_f32le", "-f", "f32le", "pipe:1",
    ];

    /// <summary>ffprobe's arguments: the audio streams of the container, as JSON.</summary>
    public static IReadOnlyList<string> ProbeArguments(string input) =>
    [
        "-v", "error", "-hide_banner", "-protocol_whitelist", "file", "-format_whitelist", Demuxers,
        "-select_streams", "a", "-show_entries", "stream=index,codec_name,sample_rate,channels", "-of", "json", input,
    ];

    /// <summary>Decodes <paramref name="upload"/>; every problem of the upload is an <see cref="AudioInputException"/>.</summary>
    public async Task<CanonicalAudio> DecodeAsync(Stream upload, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        var path = await SpoolAsync(upload, ct);
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(TimeSpan.FromSeconds(options.DecodeTimeoutSeconds));
            try
            {
                var stream = await ProbeAsync(path, deadline.Token);
                var audio = await DecodePcmAsync(path, deadline.Token);
                logger.LogDebug("Decoded {Codec} ({Rate} Hz, {Channels} ch) to {Seconds:F2} s of canonical audio {Sha256} in {Ms} ms",
                    stream.CodecName, stream.SampleRate, stream.Channels, audio.Seconds, audio.Sha256, watch.ElapsedMilliseconds);
                return audio;
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new AudioInputException(AudioProblem.Undecodable, $"decoding the uploaded file took longer than {options.DecodeTimeoutSeconds:G} s");
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Canonical audio for samples already at 16 kHz mono: the hash is over their little-endian float32 bytes.</summary>
    public static CanonicalAudio FromSamples(float[] samples)
    {
        var bytes = new byte[samples.Length * sizeof(float)];
        for (var i = 0; i < samples.Length; i++)
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), samples[i]);
        return new CanonicalAudio(samples, Hash(bytes));
    }

    /// <summary>Writes the upload to a private temporary file: MP4 and some other containers need to seek.</summary>
    private async Task<string> SpoolAsync(Stream upload, CancellationToken ct)
    {
        var folder = options.TempDirectory ?? Path.GetTempPath();
        var path = Path.Combine(folder, $"mlnode-audio-{Guid.NewGuid():N}");
        var written = 0L;
        try
        {
            // Uploads are private: readable by this user only (the temporary folder may be shared).
            var create = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows()) create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            await using (var file = new FileStream(path, create))
            {
                var buffer = new byte[1 << 16];
                int read;
                while ((read = await upload.ReadAsync(buffer, ct)) > 0)
                {
                    written += read;
                    if (written > options.MaxUploadBytes)
                        throw new AudioInputException(AudioProblem.TooLarge, $"the uploaded file is larger than the limit of {options.MaxUploadBytes} bytes");
                    await file.WriteAsync(buffer.AsMemory(0, read), ct);
                }
            }
            if (written == 0)
                throw new AudioInputException(AudioProblem.Empty, "the uploaded file is empty");
            return path;
        }
        catch
        {
            File.Delete(path);
            throw;
        }
    }

    private sealed record AudioStream(string CodecName, int SampleRate, int Channels);

    private async Task<AudioStream> ProbeAsync(string path, CancellationToken ct)
    {
        var probe = await ExternalTool.RunAsync(options.ResolvedFFprobePath, ProbeArguments(path), 1 << 20, ct);
        if (probe.ExitCode != 0)
            throw new AudioInputException(AudioProblem.NotMedia, $"the uploaded file is not audio in a supported format (wav, flac, mp3, ogg/opus, m4a/mp4, webm): {probe.FirstError(path)}");
        JsonElement streams;
        try
        {
            streams = JsonDocument.Parse(probe.Stdout).RootElement.GetProperty("streams");
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new AudioDecoderUnavailableException($"ffprobe printed something other than its JSON stream list: {e.Message}", e);
        }
        if (streams.GetArrayLength() == 0)
            throw new AudioInputException(AudioProblem.NoAudioStream, "the uploaded file has no audio stream");
        var first = streams[0];
        return new AudioStream(
            first.TryGetProperty("codec_name", out var codec) ? codec.GetString() ?? "?" : "?",
            first.TryGetProperty("sample_rate", out var rate) && int.TryParse(rate.GetString(), CultureInfo.InvariantCulture, out var hz) ? hz : 0,
            first.TryGetProperty("channels", out var channels) ? channels.GetInt32() : 0);
    }

    private async Task<CanonicalAudio> DecodePcmAsync(string path, CancellationToken ct)
    {
        var decoded = await ExternalTool.RunAsync(options.FFmpegPath, DecodeArguments(path), options.MaxSamples * sizeof(float), ct);
        if (decoded.StdoutOverflowed)
            throw new AudioInputException(AudioProblem.TooLong, $"the uploaded audio is longer than the limit of {options.MaxDurationSeconds:G} s");
        if (decoded.ExitCode != 0)
            throw new AudioInputException(AudioProblem.Undecodable, $"the audio stream of the uploaded file cannot be decoded: {decoded.FirstError(path)}");
        var pcm = decoded.Stdout;
        if (pcm.Length < sizeof(float))
            throw new AudioInputException(AudioProblem.Empty, "the uploaded file decodes to no audio samples");

        var samples = new float[pcm.Length / sizeof(float)];
        for (var i = 0; i < samples.Length; i++)
        {
            samples[i] = BinaryPrimitives.ReadSingleLittleEndian(pcm.AsSpan(i * sizeof(float)));
            if (!float.IsFinite(samples[i]))
                throw new AudioInputException(AudioProblem.Undecodable, $"the uploaded audio has a non-finite sample at {i / (double)CanonicalAudio.SampleRate:F3} s");
        }
        return new CanonicalAudio(samples, Hash(pcm));
    }

    private static string Hash(byte[] littleEndianFloats) => Convert.ToHexStringLower(SHA256.HashData(littleEndianFloats));
}

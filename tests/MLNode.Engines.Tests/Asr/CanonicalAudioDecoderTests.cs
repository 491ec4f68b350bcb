using System.Diagnostics;
using MLNode.Engines.Asr;
using MLNode.Engines.Asr.Audio;
using MLNode.Tests;
using Microsoft.Extensions.Logging.Abstractions;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Asr;

/// <summary>The pinned FFmpeg pipeline on the audio fixtures, on other containers of the same speech, and on bad uploads.</summary>
public sealed class CanonicalAudioDecoderTests : IDisposable
{
    /// <summary>The wav fixture's canonical hash: exact int16/32768 samples, so the same on every FFmpeg build.</summary>
    private const string SpeechEnSha256 = "57c34fd33a8472b3082e1c7a0629886f99f27710f21ed054524701822ee4774a";

    private readonly string _scratch = Directory.CreateTempSubdirectory("mlnode-audio-test-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static CanonicalAudioDecoder Decoder(AudioDecodingOptions? options = null) =>
        new(options ?? new AudioDecodingOptions(), NullLogger<CanonicalAudioDecoder>.Instance);

    private static async Task<CanonicalAudio> DecodeFile(string path, AudioDecodingOptions? options = null)
    {
        await using var file = File.OpenRead(path);
        return await Decoder(options).DecodeAsync(file, Ct);
    }

    private static Task<CanonicalAudio> DecodeBytes(byte[] bytes, AudioDecodingOptions? options = null) =>
        Decoder(options).DecodeAsync(new MemoryStream(bytes), Ct);

    [Fact]
    public async Task A_16_kHz_mono_16_bit_wav_decodes_to_exactly_int16_over_32768()
    {
        var expected = WavSamples.Read(Fixtures.Path("audio", "speech_en_16k.wav"));
        var audio = await DecodeFile(Fixtures.Path("audio", "speech_en_16k.wav"));
        Assert.Equal(expected, audio.Samples);
        Assert.Equal(SpeechEnSha256, audio.Sha256);
        Assert.Equal(CanonicalAudioDecoder.FromSamples(expected).Sha256, audio.Sha256);
    }

    [Fact]
    public async Task Hashes_are_stable_across_decodes()
    {
        var mp3 = Fixtures.Path("audio", "speech_en_44k_stereo.mp3");
        var first = await DecodeFile(mp3);
        var second = await DecodeFile(mp3);
        Assert.Equal(first.Sha256, second.Sha256);
        Assert.Equal(first.Samples, second.Samples);
        Assert.Matches("^[0-9a-f]{64}$", first.Sha256);
        Assert.Equal(CanonicalAudioDecoder.FromSamples(first.Samples).Sha256, first.Sha256);
    }

    /// <summary>
    /// The mp3 holds the same speech resampled to 44.1 kHz stereo (both channels equal) at a lower level, through a lossy
    /// codec. Decoded, it has the wav's length to within 10 ms and, aligned by the best lag and a least-squares gain, the
    /// residual is under 3 % of the signal RMS (measured 1.3 %: the codec's noise and the resamplers' band edges).
    /// </summary>
    [Fact]
    public async Task The_44_kHz_stereo_mp3_decodes_close_to_the_wav()
    {
        var wav = WavSamples.Read(Fixtures.Path("audio", "speech_en_16k.wav"));
        var mp3 = (await DecodeFile(Fixtures.Path("audio", "speech_en_44k_stereo.mp3"))).Samples;
        Assert.InRange(mp3.Length, wav.Length - 160, wav.Length + 160);

        var (lag, gain, residual) = Alignment.Best(wav, mp3, maxLag: 400);
        Assert.Equal(0, lag);
        Assert.InRange(gain, 0.5, 1.0);
        Assert.True(residual < 0.03, $"relative residual {residual:F4} at lag {lag}, gain {gain:F4}");
    }

    /// <summary>
    /// What the models see: the HF log-mel of both decodes (128 bins, one 30 s window), over the 647 frames that hold
    /// speech. The mp3's lower level (gain g = 0.67, fitted above) moves every unclamped feature by log10(g²)/4 = −0.086;
    /// the mean difference is that offset to within 0.01 (measured 0.0006). With the offset taken out, features differ
    /// by less than 0.015 on average and 0.15 at the 99th percentile (measured 0.0070 and 0.075: twice the margin).
    /// The largest differences (0.42) sit in near-silent bins at the clamp floor, where the
    /// codec's noise is all there is, so the maximum is not a useful bound.
    /// </summary>
    [Fact]
    public async Task The_mp3_and_the_wav_give_close_log_mel_features()
    {
        var wav = WavSamples.Read(Fixtures.Path("audio", "speech_en_16k.wav"));
        var mp3 = (await DecodeFile(Fixtures.Path("audio", "speech_en_44k_stereo.mp3"))).Samples;
        var (_, gain, _) = Alignment.Best(wav, mp3, maxLag: 0);

        var mel = new LogMelSpectrogram(128);
        using var fromWav = mel.Window(wav, LogMelSpectrogram.WindowSamples, CPU);
        using var fromMp3 = mel.Window(mp3, LogMelSpectrogram.WindowSamples, CPU);
        // Only the frames that hold speech: the padding to 30 s sits at the clamp floor in both and would dilute the statistics.
        using var delta = (fromMp3 - fromWav).narrow(1, 0, wav.Length / LogMelSpectrogram.HopLength);
        var offset = Math.Log10(gain * gain) / 4;
        var meanDelta = delta.mean().item<float>();
        Assert.True(Math.Abs(meanDelta - offset) < 0.01, $"mean Δ {meanDelta:F4}, gain offset {offset:F4}");

        using var residual = (delta - offset).abs().flatten();
        var sorted = residual.data<float>().ToArray();
        Array.Sort(sorted);
        var mean = sorted.Average();
        var p99 = sorted[(int)(0.99 * (sorted.Length - 1))];
        Assert.True(mean < 0.015, $"mean |Δ| after the gain offset {mean:F4}");
        Assert.True(p99 < 0.15, $"99th percentile |Δ| after the gain offset {p99:F4}");
    }

    [Theory]
    [InlineData("flac", "-c:a flac")]
    [InlineData("ogg", "-c:a libopus")]
    [InlineData("webm", "-c:a libopus")]
    [InlineData("m4a", "-c:a aac")]
    public async Task Other_containers_of_the_same_speech_decode_to_16_kHz_mono(string extension, string codec)
    {
        var wav = WavSamples.Read(Fixtures.Path("audio", "speech_en_16k.wav"));
        var path = MakeWithFFmpeg($"-i {Fixtures.Path("audio", "speech_en_16k.wav")} -ac 2 -ar 48000 {codec}", extension);
        var audio = await DecodeFile(path);
        // Codecs add priming or padding of at most a few frames (AAC: 1024 samples at 48 kHz); 100 ms bounds all of them.
        Assert.InRange(audio.Samples.Length, wav.Length - 1600, wav.Length + 1600);
        Assert.Equal(audio.Sha256, (await DecodeFile(path)).Sha256);
    }

    [Fact]
    public async Task Lossless_flac_at_16_kHz_mono_gives_the_wav_samples_and_hash()
    {
        var path = MakeWithFFmpeg($"-i {Fixtures.Path("audio", "speech_en_16k.wav")} -c:a flac", "flac");
        var audio = await DecodeFile(path);
        Assert.Equal(SpeechEnSha256, audio.Sha256);
    }

    [Fact]
    public async Task Empty_upload_is_refused_as_empty()
    {
        var e = await Assert.ThrowsAsync<AudioInputException>(() => DecodeBytes([]));
        Assert.Equal(AudioProblem.Empty, e.Problem);
    }

    [Fact]
    public async Task Garbage_bytes_are_not_media()
    {
        var garbage = new byte[5000];
        new Random(7).NextBytes(garbage);
        var e = await Assert.ThrowsAsync<AudioInputException>(() => DecodeBytes(garbage));
        Assert.Equal(AudioProblem.NotMedia, e.Problem);
    }

    [Fact]
    public async Task A_text_file_is_not_media()
    {
        var e = await Assert.ThrowsAsync<AudioInputException>(() => DecodeBytes("hello, this is not audio\n"u8.ToArray()));
        Assert.Equal(AudioProblem.NotMedia, e.Problem);
        Assert.DoesNotContain(Path.GetTempPath(), e.Message);
    }

    /// <summary>A playlist naming a local file would make an unrestricted FFmpeg read it: only the audio demuxers are allowed.</summary>
    [Fact]
    public async Task A_playlist_is_refused_instead_of_followed()
    {
        var playlist = $"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile://{Fixtures.Path("audio", "speech_en_16k.wav")}\n#EXT-X-ENDLIST\n";
        var e = await Assert.ThrowsAsync<AudioInputException>(() => DecodeBytes(System.Text.Encoding.UTF8.GetBytes(playlist)));
        Assert.Equal(AudioProblem.NotMedia, e.Problem);
    }

    [Fact]
    public async Task A_video_without_audio_has_no_audio_stream()
    {
        var path = MakeWithFFmpeg("-f lavfi -i testsrc=size=32x32:rate=5 -t 1 -c:v mpeg4", "mp4");
        var e = await Assert.ThrowsAsync<AudioInputException>(() => DecodeFile(path));
        Assert.Equal(AudioProblem.NoAudioStream, e.Problem);
    }

    [Fact]
    public async Task An_audio_stream_without_a_decoder_is_undecodable()
    {
        // A valid RIFF/WAVE header whose format tag 0x1234 names no codec.
        var data = Enumerable.Range(0, 4096).Select(i => (byte)i).ToArray();
        using var wav = new MemoryStream();
        using (var w = new BinaryWriter(wav, System.Text.Encoding.ASCII, leaveOpen: true))
        {
            w.Write("RIFF"u8);
            w.Write(36 + data.Length);
            w.Write("WAVEfmt "u8);
            w.Write(16);
            w.Write((ushort)0x1234);
            w.Write((ushort)1);
            w.Write(16000);
            w.Write(32000);
            w.Write((ushort)2);
            w.Write((ushort)16);
            w.Write("data"u8);
            w.Write(data.Length);
            w.Write(data);
        }
        var e = await Assert.ThrowsAsync<AudioInputException>(() => DecodeBytes(wav.ToArray()));
        Assert.Equal(AudioProblem.Undecodable, e.Problem);
    }

    [Fact]
    public async Task Uploads_over_the_byte_limit_are_too_large()
    {
        var e = await Assert.ThrowsAsync<AudioInputException>(() =>
            DecodeFile(Fixtures.Path("audio", "speech_en_16k.wav"), new AudioDecodingOptions { MaxUploadBytes = 100_000 }));
        Assert.Equal(AudioProblem.TooLarge, e.Problem);
        Assert.True(e.OverLimit);
    }

    [Fact]
    public async Task Audio_over_the_duration_limit_is_too_long()
    {
        var e = await Assert.ThrowsAsync<AudioInputException>(() =>
            DecodeFile(Fixtures.Path("audio", "speech_en_16k.wav"), new AudioDecodingOptions { MaxDurationSeconds = 2 }));
        Assert.Equal(AudioProblem.TooLong, e.Problem);
        Assert.True(e.OverLimit);

        // Exactly at the limit is accepted.
        var samples = WavSamples.Read(Fixtures.Path("audio", "speech_en_16k.wav")).Length;
        var atLimit = await DecodeFile(Fixtures.Path("audio", "speech_en_16k.wav"), new AudioDecodingOptions { MaxDurationSeconds = samples / 16000.0 });
        Assert.Equal(samples, atLimit.Samples.Length);
    }

    [Fact]
    public async Task A_missing_ffmpeg_is_the_node_s_fault_not_the_upload_s()
    {
        var options = new AudioDecodingOptions { FFmpegPath = Path.Combine(_scratch, "no-such-ffmpeg") };
        await Assert.ThrowsAsync<AudioDecoderUnavailableException>(() => DecodeFile(Fixtures.Path("audio", "speech_en_16k.wav"), options));
    }

    [Fact]
    public void The_pipeline_pins_the_resampler_the_downmix_and_the_output()
    {
        var args = CanonicalAudioDecoder.DecodeArguments("in");
        Assert.Equal(["-map", "0:a:0"], args.Skip(args.ToList().IndexOf("-map")).Take(2));
        Assert.Contains("pcm_f32le", args);
        Assert.Equal("f32le", args[args.ToList().IndexOf("-f") + 1]);
        Assert.Equal(1, args.Count(a => a == "-af"));
        var filter = args[args.ToList().IndexOf("-af") + 1];
        Assert.Equal(CanonicalAudioDecoder.ResampleFilter, filter);
        foreach (var pinned in new[] { "resampler=swr", "osr=16000", "ochl=mono", "osf=flt", "rematrix_maxval=1", "filter_size=32", "cutoff=0.97" })
            Assert.Contains(pinned, filter.Split('=', 2)[1].Split(':'));
    }

    /// <summary>Makes a test input with the system ffmpeg; fails naming the command when it cannot.</summary>
    private string MakeWithFFmpeg(string arguments, string extension)
    {
        var output = Path.Combine(_scratch, $"{Guid.NewGuid():N}.{extension}");
        var start = new ProcessStartInfo("ffmpeg") { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in $"-nostdin -hide_banner -loglevel error {arguments} -y".Split(' ', StringSplitOptions.RemoveEmptyEntries))
            start.ArgumentList.Add(a);
        start.ArgumentList.Add(output);
        using var process = Process.Start(start)!;
        var errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"ffmpeg {arguments} failed: {errors}");
        return output;
    }

    public void Dispose() => Directory.Delete(_scratch, recursive: true);
}

/// <summary>Best alignment of a decoded signal to a reference: integer lag, least-squares gain, relative residual RMS.</summary>
internal static class Alignment
{
    public static (int Lag, double Gain, double RelativeResidual) Best(float[] reference, float[] signal, int maxLag)
    {
        var best = (Lag: 0, Gain: 0.0, RelativeResidual: double.PositiveInfinity);
        for (var lag = -maxLag; lag <= maxLag; lag++)
        {
            var (cross, energyRef, energySig) = (0.0, 0.0, 0.0);
            for (var i = Math.Max(0, -lag); i < reference.Length && i + lag < signal.Length; i++)
            {
                if (i + lag < 0) continue;
                double r = reference[i], s = signal[i + lag];
                cross += r * s;
                energyRef += r * r;
                energySig += s * s;
            }
            var gain = cross / energyRef;
            // ‖s − g·r‖² = ‖s‖² − g·⟨r,s⟩ at the least-squares gain, relative to the scaled reference's energy.
            var residual = Math.Sqrt(Math.Max(0, energySig - gain * cross) / (gain * gain * energyRef));
            if (residual < best.RelativeResidual) best = (lag, gain, residual);
        }
        return best;
    }
}

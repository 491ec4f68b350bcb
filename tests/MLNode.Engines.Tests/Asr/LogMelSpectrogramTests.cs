using System.IO.Compression;
using MLNode.Engines.Asr.Audio;
using MLNode.Runtime.Checkpoints;
using MLNode.Tests;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Asr;

/// <summary>
/// The front end against Hugging Face's WhisperFeatureExtractor outputs (whisper-tiny-random and qwen3-asr-tiny
/// fixtures) and openai-whisper's filter bank (assets/mel_filters.npz).
/// </summary>
public sealed class LogMelSpectrogramTests
{
    // Both sides run a float32 STFT and matmul with different FFT algorithms and summation orders; on log10 features of
    // order 1 that moves values by ~1e-6, so the 1e-4 bound keeps a wide margin.
    private const double FeatureTolerance = 1e-4;

    [Theory]
    [InlineData("speech_en_16k")]
    [InlineData("speech_de_16k")]
    public void Padded_window_matches_the_reference_features(string clip)
    {
        var samples = WavSamples.Read(Fixtures.Path("audio", $"{clip}.wav"));
        using var ours = new LogMelSpectrogram(128).Window(samples, LogMelSpectrogram.WindowSamples, CPU);
        using var reference = Reference(Fixtures.Path("whisper", "whisper-tiny-random", "reference_tensors.safetensors"), $"{clip}.mel");
        AssertClose(reference, ours);
    }

    [Fact]
    public void First_30_seconds_of_the_long_file_match_the_reference_window()
    {
        var samples = WavSamples.Read(Fixtures.Path("audio", "speech_long_16k.wav"));
        using var ours = new LogMelSpectrogram(128).Window(samples.AsSpan(0, LogMelSpectrogram.WindowSamples), LogMelSpectrogram.WindowSamples, CPU);
        using var reference = Reference(Fixtures.Path("whisper", "long_window0_mel.safetensors"), "long_window0.mel");
        AssertClose(reference, ours);
    }

    [Fact]
    public void Unpadded_features_match_qwen3_asr_reference()
    {
        var samples = WavSamples.Read(Fixtures.Path("audio", "speech_en_16k.wav"));
        using var ours = new LogMelSpectrogram(128).Window(samples, padTo: null, CPU);
        using var reference = Reference(Fixtures.Path("asr", "qwen3-asr-tiny", "reference_tensors.safetensors"), "mel");
        Assert.Equal([128L, 647L], ours.shape);
        AssertClose(reference, ours);
    }

    [Theory]
    [InlineData(80)]
    [InlineData(128)]
    public void Filter_bank_matches_openai_whisper_assets(int bins)
    {
        var expected = NpzFloat32(Fixtures.Path("whisper", "assets", "mel_filters.npz"), $"mel_{bins}");
        var ours = new LogMelSpectrogram(bins).Filters.ToArray();
        Assert.Equal(expected.Length, ours.Length);
        // librosa builds the same bank in float64 and stores float32: only the last float32 bit may differ.
        for (var i = 0; i < ours.Length; i++)
            Assert.True(Math.Abs(ours[i] - expected[i]) <= 1e-6 * Math.Max(1, Math.Abs(expected[i])), $"filter entry {i}: {ours[i]} vs {expected[i]}");
    }

    [Fact]
    public void Whole_file_features_clamp_against_the_file_maximum_and_append_30_seconds()
    {
        var samples = WavSamples.Read(Fixtures.Path("audio", "speech_long_16k.wav"));
        var mel = new LogMelSpectrogram(128);
        using var whole = mel.WholeFile(samples, CPU);
        Assert.Equal((samples.Length + LogMelSpectrogram.WindowSamples) / LogMelSpectrogram.HopLength, whole.shape[1]);
        // One clamp for the whole file: nothing lies more than 8 decades (2.0 after scaling) below the global maximum.
        Assert.True((whole.max() - whole.min()).item<float>() <= 2.0f + 1e-6f);
        // The appended silence sits exactly at the clamp floor.
        Assert.Equal(whole.max().item<float>() - 2.0f, whole[.., -1].max().item<float>(), 5);
    }

    private static void AssertClose(Tensor reference, Tensor ours)
    {
        Assert.Equal(reference.shape, ours.shape);
        var worst = (reference - ours).abs().max().item<float>();
        Assert.True(worst <= FeatureTolerance, $"max |Δ| {worst} > {FeatureTolerance}");
    }

    private static Tensor Reference(string file, string name)
    {
        using var st = SafetensorsFile.Open(file);
        return st.Load(name, CPU);
    }

    /// <summary>A float32 array stored in an .npz (a zip of .npy files with a text header).</summary>
    private static float[] NpzFloat32(string path, string name)
    {
        using var zip = ZipFile.OpenRead(path);
        using var stream = zip.GetEntry($"{name}.npy")!.Open();
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        var bytes = buffer.ToArray();
        var headerLength = BitConverter.ToUInt16(bytes, 8);
        var header = System.Text.Encoding.ASCII.GetString(bytes, 10, headerLength);
        Assert.Contains("'<f4'", header);
        Assert.Contains("False", header); // C order
        var data = bytes.AsSpan(10 + headerLength);
        return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(data).ToArray();
    }
}

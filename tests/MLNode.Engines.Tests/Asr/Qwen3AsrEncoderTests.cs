using MLNode.Engines.Asr.Audio;
using MLNode.Tests;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Asr;

/// <summary>The Qwen3-ASR audio encoder of qwen3-asr-tiny against the official modeling code's output (fp32).</summary>
public sealed class Qwen3AsrEncoderTests
{
    // Both sides compute in float32 (the bf16 weights are exact in fp32) with different convolution and GEMM summation
    // orders, which moves these O(1) activations by ~1e-6: the 1e-4 keeps a wide margin.
    private const double ReferenceTolerance = 1e-4;

    // The same code on the same CPU, only with other batch shapes (GEMM blocking may change the summation order).
    private const double BatchTolerance = 1e-5;

    [Fact]
    public void Config_reads_the_nested_thinker_layout()
    {
        var config = Qwen3AsrTiny.Config;
        Assert.Equal((128, 64, 2, 4, 128, 32), (config.Audio.NumMelBins, config.Audio.DModel, config.Audio.EncoderLayers,
            config.Audio.EncoderAttentionHeads, config.Audio.EncoderFfnDim, config.Audio.DownsampleHiddenSize));
        Assert.Equal((100, 13, 104), (config.Audio.ChunkFrames, config.Audio.ChunkTokens, config.Audio.AttentionWindowTokens));
        Assert.Equal(84, config.Audio.TokensFor(647));
        Assert.Equal((96, 2, 4, 2, 24, 600, true), (config.Text.HiddenSize, config.Text.NumHiddenLayers, config.Text.NumAttentionHeads,
            config.Text.NumKeyValueHeads, config.Text.HeadDim, config.Text.VocabSize, config.Text.TieWordEmbeddings));
        Assert.Equal((590, 591), (config.AudioTokenId, config.AudioStartTokenId));
    }

    [Theory]
    [InlineData(100, 13)]
    [InlineData(647, 84)]
    [InlineData(1, 1)]
    [InlineData(8, 1)]
    [InlineData(9, 2)]
    [InlineData(3000, 390)]
    public void Token_count_is_13_per_full_chunk_plus_the_remainders(int frames, int tokens) =>
        // The reference: ((L % 100) + 7) // 8 + (L // 100) * 13.
        Assert.Equal(tokens, Qwen3AsrTiny.Config.Audio.TokensFor(frames));

    [Fact]
    public void Encoder_output_of_the_reference_mel_matches_the_reference()
    {
        using var scope = NewDisposeScope();
        var ours = Qwen3AsrTiny.Model.EncodeAudio([Qwen3AsrTiny.ReferenceTensor("mel")]);
        AssertClose(Qwen3AsrTiny.ReferenceTensor("audio_embeds"), ours, ReferenceTolerance);
    }

    [Fact]
    public void Unpadded_front_end_and_encoder_match_the_reference_from_the_wav()
    {
        using var scope = NewDisposeScope();
        var samples = WavSamples.Read(Fixtures.Path("audio", "speech_en_16k.wav"));
        var mel = new LogMelSpectrogram(Qwen3AsrTiny.Config.Audio.NumMelBins).Window(samples, padTo: null, CPU);
        Assert.Equal([128L, 647L], mel.shape);
        AssertClose(Qwen3AsrTiny.ReferenceTensor("mel"), mel, ReferenceTolerance);
        AssertClose(Qwen3AsrTiny.ReferenceTensor("audio_embeds"), Qwen3AsrTiny.Model.EncodeAudio([mel]), ReferenceTolerance);
    }

    [Fact]
    public void Windows_encoded_together_match_each_window_encoded_alone()
    {
        using var scope = NewDisposeScope();
        var mel = Qwen3AsrTiny.ReferenceTensor("mel");
        // 6.47 s, 0.47 s (shorter than one chunk: its own convolution width) and 3 s of whole chunks.
        Tensor[] windows = [mel, mel.narrow(1, 100, 47), mel.narrow(1, 200, 300)];
        var together = Qwen3AsrTiny.Model.EncodeAudio(windows);
        var counts = windows.Select(w => (long)Qwen3AsrTiny.Config.Audio.TokensFor((int)w.shape[1])).ToArray();
        Assert.Equal(counts.Sum(), together.shape[0]);
        var parts = together.split(counts, 0);
        for (var i = 0; i < windows.Length; i++)
            AssertClose(Qwen3AsrTiny.Model.EncodeAudio([windows[i]]), parts[i], BatchTolerance);
    }

    [Fact]
    public void Attention_stays_inside_windows_of_104_tokens()
    {
        using var scope = NewDisposeScope();
        var samples = WavSamples.Read(Fixtures.Path("audio", "speech_long_16k.wav"));
        var mel = new LogMelSpectrogram(128).Window(samples.AsSpan(0, 20 * 16000), padTo: null, CPU);
        // 20 s: 260 tokens in attention windows of 104, 104 and 52. Chunks and their positions restart every 100 frames
        // and windows every 800, so each 8 s stretch encodes exactly as if it stood alone.
        var whole = Qwen3AsrTiny.Model.EncodeAudio([mel]);
        Assert.Equal(260, whole.shape[0]);
        for (var w = 0; w < 3; w++)
        {
            var frames = Math.Min(800, (int)mel.shape[1] - 800 * w);
            var alone = Qwen3AsrTiny.Model.EncodeAudio([mel.narrow(1, 800 * w, frames)]);
            AssertClose(alone, whole.narrow(0, 104 * w, alone.shape[0]), BatchTolerance);
        }
        // Whereas the same 4 s in an attention window with other neighbours encode differently: the windows are what
        // isolates them. The random weights attend almost uniformly, so the change is small (~8e-4), yet far above the
        // 1e-5 to which the windowed runs agree.
        var shifted = Qwen3AsrTiny.Model.EncodeAudio([mel.narrow(1, 400, 800)]);
        var moved = (shifted.narrow(0, 0, 52) - whole.narrow(0, 52, 52)).abs().max().item<float>();
        Assert.True(moved > 10 * BatchTolerance, $"other neighbours moved the outputs by only {moved}");
    }

    private static void AssertClose(Tensor expected, Tensor actual, double tolerance)
    {
        Assert.Equal(expected.shape, actual.shape);
        var worst = (expected - actual).abs().max().item<float>();
        Assert.True(worst <= tolerance, $"max |Δ| {worst} > {tolerance}");
    }
}

using MLNode.Runtime.Checkpoints;

namespace MLNode.Engines.Asr.Qwen3Asr;

/// <summary>
/// <c>thinker_config.audio_config</c> of a Qwen3-ASR checkpoint: the audio encoder's shape and its chunking. Defaults are
/// those of the reference <c>Qwen3ASRAudioEncoderConfig</c> where a field may be absent.
/// </summary>
public sealed class Qwen3AsrAudioConfig
{
    /// <summary>Each of the three stride-2 convolutions halves time and frequency (k 3, padding 1).</summary>
    private const int ConvLayers = 3;

    internal Qwen3AsrAudioConfig(ConfigJsonReader json)
    {
        NumMelBins = Positive(json, "num_mel_bins", json.OptionalInt("num_mel_bins") ?? 128);
        DModel = Positive(json, "d_model", json.OptionalInt("d_model") ?? 1280);
        EncoderLayers = Positive(json, "encoder_layers", json.OptionalInt("encoder_layers") ?? 32);
        EncoderAttentionHeads = Positive(json, "encoder_attention_heads", json.OptionalInt("encoder_attention_heads") ?? 20);
        if (DModel % EncoderAttentionHeads != 0)
            throw json.Error("encoder_attention_heads", $"({EncoderAttentionHeads}) must divide d_model ({DModel})");
        EncoderFfnDim = Positive(json, "encoder_ffn_dim", json.OptionalInt("encoder_ffn_dim") ?? 5120);
        MaxSourcePositions = Positive(json, "max_source_positions", json.OptionalInt("max_source_positions") ?? 1500);
        NWindow = Positive(json, "n_window", json.OptionalInt("n_window") ?? 100);
        NWindowInfer = Positive(json, "n_window_infer", json.OptionalInt("n_window_infer") ?? 400);
        if (NWindowInfer < ChunkFrames)
            throw json.Error("n_window_infer", $"({NWindowInfer}) must be at least one chunk, n_window·2 = {ChunkFrames} frames");
        OutputDim = Positive(json, "output_dim", json.OptionalInt("output_dim") ?? 3584);
        DownsampleHiddenSize = Positive(json, "downsample_hidden_size", json.OptionalInt("downsample_hidden_size") ?? 480);
        ConvChunkSize = Positive(json, "conv_chunksize", json.OptionalInt("conv_chunksize") ?? 500);
        var activation = json.OptionalString("activation_function") ?? "gelu";
        if (activation != "gelu")
            throw json.Error("activation_function", $"is '{activation}'; the Qwen3-ASR encoder here implements gelu");
        if (DModel % 2 != 0)
            throw json.Error("d_model", $"({DModel}) must be even for the sinusoidal positions");
        if (ChunkTokens > MaxSourcePositions)
            throw json.Error("max_source_positions", $"({MaxSourcePositions}) is shorter than one chunk's {ChunkTokens} tokens");
    }

    public int NumMelBins { get; }
    public int DModel { get; }
    public int EncoderLayers { get; }
    public int EncoderAttentionHeads { get; }
    public int EncoderFfnDim { get; }
    public int MaxSourcePositions { get; }
    public int NWindow { get; }
    public int NWindowInfer { get; }

    /// <summary>Width of the projected audio embeddings: the text decoder's hidden size.</summary>
    public int OutputDim { get; }

    /// <summary>Channels of the convolution stem.</summary>
    public int DownsampleHiddenSize { get; }

    /// <summary>At most this many chunks go through the convolution stem in one call (bounds its activations).</summary>
    public int ConvChunkSize { get; }

    /// <summary>Mel frames per chunk, n_window·2 (1 s for the released models): the convolutions see one chunk at a time.</summary>
    public int ChunkFrames => 2 * NWindow;

    /// <summary>Tokens a full chunk yields (13 for 100 frames).</summary>
    public int ChunkTokens => Downsampled(ChunkFrames);

    /// <summary>Mel bins left after the convolutions (16 of 128): conv_out reads DownsampleHiddenSize × this.</summary>
    public int DownsampledMelBins => Downsampled(NumMelBins);

    /// <summary>Tokens that attend to each other: 13 · n_window_infer / (n_window·2) (104, 8 s, for the released models).</summary>
    public int AttentionWindowTokens => ChunkTokens * (NWindowInfer / ChunkFrames);

    /// <summary>Encoder tokens for <paramref name="frames"/> mel frames: 13 per full chunk plus the remainder's.</summary>
    public int TokensFor(int frames) => frames / ChunkFrames * ChunkTokens + Downsampled(frames % ChunkFrames);

    /// <summary>Length after the stride-2 convolutions: ⌈n / 2⌉ each time, 0 stays 0.</summary>
    internal static int Downsampled(int length)
    {
        for (var i = 0; i < ConvLayers; i++)
            length = (length + 1) / 2;
        return length;
    }

    private static int Positive(ConfigJsonReader json, string field, int value) =>
        value > 0 ? value : throw json.Error(field, $"must be positive, got {value}");
}

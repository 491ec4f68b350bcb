using System.Text.Json;
using MLNode.Runtime.Checkpoints;

namespace MLNode.Engines.Dit;

/// <summary>
/// The fields of a diffusers <c>WanTransformer3DModel</c> config (<c>transformer/config.json</c>,
/// <c>transformer_2/config.json</c> of the Wan diffusers checkpoints), with the config class's defaults (Wan2.2
/// A14B's expert) where a field is absent. Text-to-video only: the image-conditioning fields of the I2V models
/// (<c>image_dim</c>, <c>added_kv_proj_dim</c>, <c>pos_embed_seq_len</c>) must be unset.
/// </summary>
public sealed class WanTransformerConfig
{
    /// <summary>The only q/k normalisation diffusers' Wan attention builds: one RMSNorm over all heads' channels.</summary>
    public const string RmsNormAcrossHeads = "rms_norm_across_heads";

    private WanTransformerConfig(ConfigJsonReader json)
    {
        var className = json.OptionalString("_class_name");
        if (className is not null && className != "WanTransformer3DModel")
            throw json.Error("_class_name", $"is '{className}'; only 'WanTransformer3DModel' is supported");
        foreach (var field in (string[])["image_dim", "added_kv_proj_dim", "pos_embed_seq_len"])
        {
            if (json.Element.TryGetProperty(field, out var value) && value.ValueKind != JsonValueKind.Null)
                throw json.Error(field, "is set: image conditioning (I2V) is not supported, only text-to-video");
        }
        var qkNorm = json.OptionalString("qk_norm") ?? RmsNormAcrossHeads;
        if (qkNorm != RmsNormAcrossHeads) throw json.Error("qk_norm", $"is '{qkNorm}'; only '{RmsNormAcrossHeads}' is supported");

        var patch = json.OptionalIntArray("patch_size") ?? [1, 2, 2];
        if (patch.Count != 3 || patch.Any(p => p <= 0)) throw json.Error("patch_size", $"must be three positive sizes (t, h, w), got [{string.Join(", ", patch)}]");
        PatchSize = patch;
        NumAttentionHeads = Positive(json, "num_attention_heads", json.OptionalInt("num_attention_heads") ?? 40);
        AttentionHeadDim = Positive(json, "attention_head_dim", json.OptionalInt("attention_head_dim") ?? 128);
        // RoPE rotates channel pairs, three axes of at least one pair each.
        if (AttentionHeadDim % 2 != 0 || AttentionHeadDim < 6)
            throw json.Error("attention_head_dim", $"must be even and at least 6 (three rotary axes of channel pairs), got {AttentionHeadDim}");
        InChannels = Positive(json, "in_channels", json.OptionalInt("in_channels") ?? 16);
        OutChannels = Positive(json, "out_channels", json.OptionalInt("out_channels") ?? InChannels);
        TextDim = Positive(json, "text_dim", json.OptionalInt("text_dim") ?? 4096);
        FreqDim = Positive(json, "freq_dim", json.OptionalInt("freq_dim") ?? 256);
        if (FreqDim % 2 != 0) throw json.Error("freq_dim", $"must be even (cosines then sines), got {FreqDim}");
        FfnDim = Positive(json, "ffn_dim", json.OptionalInt("ffn_dim") ?? 13824);
        NumLayers = Positive(json, "num_layers", json.OptionalInt("num_layers") ?? 40);
        CrossAttnNorm = json.OptionalBool("cross_attn_norm") ?? true;
        Eps = json.OptionalDouble("eps") ?? 1e-6;
        RopeMaxSeqLen = Positive(json, "rope_max_seq_len", json.OptionalInt("rope_max_seq_len") ?? 1024);
    }

    /// <summary>(t, h, w) latent cells per token.</summary>
    public IReadOnlyList<int> PatchSize { get; }

    public int NumAttentionHeads { get; }
    public int AttentionHeadDim { get; }
    public int InChannels { get; }
    public int OutChannels { get; }

    /// <summary>Width of the text encoder's embeddings (umT5-xxl: 4096).</summary>
    public int TextDim { get; }

    /// <summary>Width of the sinusoidal timestep embedding.</summary>
    public int FreqDim { get; }

    public int FfnDim { get; }
    public int NumLayers { get; }

    /// <summary>Whether the cross-attention input goes through an affine LayerNorm (the block's <c>norm2</c>).</summary>
    public bool CrossAttnNorm { get; }

    public double Eps { get; }

    /// <summary>Positions per axis the rotary tables cover: frames, rows and columns of the token grid must stay below it.</summary>
    public int RopeMaxSeqLen { get; }

    /// <summary>The model width: heads × head width.</summary>
    public int InnerDim => NumAttentionHeads * AttentionHeadDim;

    /// <summary>Latent cells per token: t·h·w of the patch.</summary>
    public int PatchVolume => PatchSize[0] * PatchSize[1] * PatchSize[2];

    public static WanTransformerConfig FromFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"transformer config not found: {path}", path);
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>A config from its JSON text; <paramref name="source"/> names it in errors.</summary>
    public static WanTransformerConfig Parse(string json, string source)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            return new WanTransformerConfig(ConfigJsonReader.Root(document.RootElement, source));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not valid JSON: {e.Message}", e);
        }
    }

    private static int Positive(ConfigJsonReader json, string field, int value) =>
        value > 0 ? value : throw json.Error(field, $"must be positive, got {value}");
}

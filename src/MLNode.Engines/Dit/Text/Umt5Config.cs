using System.Text.Json;
using MLNode.Runtime.Checkpoints;

namespace MLNode.Engines.Dit.Text;

/// <summary>
/// The fields of a transformers <c>UMT5Config</c> (<c>text_encoder/config.json</c> of the Wan diffusers checkpoints)
/// that the encoder needs, with the config class's defaults where a field may be absent. Only the umT5 encoder
/// with gated tanh-GELU feed-forward (<c>feed_forward_proj = "gated-gelu"</c>) is accepted.
/// </summary>
public sealed class Umt5Config
{
    private Umt5Config(ConfigJsonReader json)
    {
        var modelType = json.OptionalString("model_type");
        // T5 proper shares one position bias from layer 0; umT5 has one per layer, which is what this encoder builds.
        if (modelType != "umt5") throw json.Error("model_type", $"is '{modelType}'; only 'umt5' is supported");
        var feedForward = json.OptionalString("feed_forward_proj") ?? "gated-gelu";
        if (feedForward != "gated-gelu") throw json.Error("feed_forward_proj", $"is '{feedForward}'; only 'gated-gelu' (tanh GELU, gated) is supported");

        DModel = Positive(json, "d_model", json.OptionalInt("d_model") ?? 512);
        DKv = Positive(json, "d_kv", json.OptionalInt("d_kv") ?? 64);
        DFf = Positive(json, "d_ff", json.OptionalInt("d_ff") ?? 1024);
        NumHeads = Positive(json, "num_heads", json.OptionalInt("num_heads") ?? 6);
        NumLayers = Positive(json, "num_layers", json.OptionalInt("num_layers") ?? 8);
        VocabSize = Positive(json, "vocab_size", json.OptionalInt("vocab_size") ?? 250112);
        RelativeAttentionNumBuckets = Positive(json, "relative_attention_num_buckets", json.OptionalInt("relative_attention_num_buckets") ?? 32);
        RelativeAttentionMaxDistance = Positive(json, "relative_attention_max_distance", json.OptionalInt("relative_attention_max_distance") ?? 128);
        LayerNormEpsilon = json.OptionalDouble("layer_norm_epsilon") ?? 1e-6;
        DType = json.OptionalString("dtype") ?? json.OptionalString("torch_dtype");
    }

    public int DModel { get; }

    /// <summary>Per-head width; heads × d_kv is the attention width, which need not equal d_model.</summary>
    public int DKv { get; }

    public int DFf { get; }
    public int NumHeads { get; }
    public int NumLayers { get; }
    public int VocabSize { get; }
    public int RelativeAttentionNumBuckets { get; }
    public int RelativeAttentionMaxDistance { get; }
    public double LayerNormEpsilon { get; }

    /// <summary>The checkpoint's dtype name, e.g. "bfloat16"; null when unset.</summary>
    public string? DType { get; }

    public int InnerDim => NumHeads * DKv;

    public static Umt5Config FromFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"text encoder config not found: {path}", path);
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            return new Umt5Config(ConfigJsonReader.Root(document.RootElement, path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e);
        }
    }

    private static int Positive(ConfigJsonReader json, string field, int value) =>
        value > 0 ? value : throw json.Error(field, $"must be positive, got {value}");
}

using System.Text.Json;

namespace MLNode.Runtime.Checkpoints;

/// <summary>
/// The fields of a Hugging Face <c>config.json</c> that the Qwen2 / Qwen3 / Qwen3-MoE decoders need, with
/// the defaults of the transformers config classes where a field may be absent. Configs that nest the text
/// model (Qwen3-ASR: <c>thinker_config.text_config</c>) are read by naming the section. <see cref="Raw"/>
/// keeps the whole section for fields other modalities need.
/// </summary>
public sealed class HfModelConfig
{
    private HfModelConfig(ConfigJsonReader json)
    {
        Raw = json.Element;
        ModelType = json.OptionalString("model_type") ?? throw json.Error("model_type", "is missing (expected a string)");
        Architectures = json.OptionalStringArray("architectures") ?? [];

        HiddenSize = Positive(json, "hidden_size", json.RequiredInt("hidden_size"));
        IntermediateSize = Positive(json, "intermediate_size", json.RequiredInt("intermediate_size"));
        NumHiddenLayers = Positive(json, "num_hidden_layers", json.RequiredInt("num_hidden_layers"));
        NumAttentionHeads = Positive(json, "num_attention_heads", json.RequiredInt("num_attention_heads"));
        NumKeyValueHeads = Positive(json, "num_key_value_heads", json.OptionalInt("num_key_value_heads") ?? NumAttentionHeads);
        if (NumAttentionHeads % NumKeyValueHeads != 0)
            throw json.Error("num_key_value_heads", $"({NumKeyValueHeads}) must divide num_attention_heads ({NumAttentionHeads})");
        HeadDim = Positive(json, "head_dim", json.OptionalInt("head_dim") ?? DefaultHeadDim(json));
        VocabSize = Positive(json, "vocab_size", json.RequiredInt("vocab_size"));

        RmsNormEps = json.OptionalDouble("rms_norm_eps") ?? 1e-6;
        (RopeTheta, RopeType) = ReadRope(json);
        MaxPositionEmbeddings = Positive(json, "max_position_embeddings", json.OptionalInt("max_position_embeddings") ?? 32768);
        TieWordEmbeddings = json.OptionalBool("tie_word_embeddings") ?? false;
        // transformers 5 writes "dtype"; earlier versions wrote "torch_dtype".
        DType = json.OptionalString("dtype") ?? json.OptionalString("torch_dtype");
        AttentionBias = json.OptionalBool("attention_bias") ?? false;

        NumExperts = ReadNumExperts(json);
        if (IsMoe)
        {
            NumExpertsPerTok = json.RequiredInt("num_experts_per_tok");
            if (NumExpertsPerTok < 1 || NumExpertsPerTok > NumExperts)
                throw json.Error("num_experts_per_tok", $"({NumExpertsPerTok}) must lie in 1..{NumExperts}");
            MoeIntermediateSize = Positive(json, "moe_intermediate_size", json.RequiredInt("moe_intermediate_size"));
            NormTopkProb = json.OptionalBool("norm_topk_prob") ?? false;
            DecoderSparseStep = Positive(json, "decoder_sparse_step", json.OptionalInt("decoder_sparse_step") ?? 1);
            MlpOnlyLayers = json.OptionalIntArray("mlp_only_layers") ?? [];
            var outside = MlpOnlyLayers.Where(layer => layer < 0 || layer >= NumHiddenLayers).ToArray();
            if (outside.Length > 0)
                throw json.Error("mlp_only_layers", $"names layers [{string.Join(',', outside)}] outside 0..{NumHiddenLayers - 1}");
        }

        Quantization = json.OptionalObject("quantization_config") is { } quantization ? QuantizationConfig.Parse(quantization) : null;
    }

    public string ModelType { get; }
    public IReadOnlyList<string> Architectures { get; }
    public int HiddenSize { get; }
    public int IntermediateSize { get; }
    public int NumHiddenLayers { get; }
    public int NumAttentionHeads { get; }
    public int NumKeyValueHeads { get; }

    /// <summary>Per-head width: <c>head_dim</c>, else hidden_size / num_attention_heads (Qwen3 sets it explicitly, Qwen2 never).</summary>
    public int HeadDim { get; }

    public int VocabSize { get; }
    public double RmsNormEps { get; }

    /// <summary>From <c>rope_parameters</c> (transformers 5), top-level <c>rope_theta</c>, or <c>rope_scaling</c>; they must agree.</summary>
    public double RopeTheta { get; }

    /// <summary>"default" unless rope_parameters / rope_scaling name another scheme (yarn, mrope…), which the caller must support or refuse.</summary>
    public string RopeType { get; }

    public int MaxPositionEmbeddings { get; }
    public bool TieWordEmbeddings { get; }

    /// <summary>The checkpoint's dtype name, e.g. "bfloat16"; null when unset.</summary>
    public string? DType { get; }

    /// <summary>The <c>attention_bias</c> field as written (false when absent). See <see cref="QkvBias"/> for what it means per family.</summary>
    public bool AttentionBias { get; }

    /// <summary>Whether q/k/v projections have biases: always in Qwen2 (its config has no field for it), else <c>attention_bias</c>.</summary>
    public bool QkvBias => IsQwen2Family || AttentionBias;

    /// <summary>Whether the output projection has a bias: never in Qwen2, else <c>attention_bias</c>.</summary>
    public bool OutputProjectionBias => !IsQwen2Family && AttentionBias;

    /// <summary>Routed experts: <c>num_experts</c>, or <c>num_local_experts</c> as transformers 5 writes it; null for dense models.</summary>
    public int? NumExperts { get; }

    public int? NumExpertsPerTok { get; }
    public int? MoeIntermediateSize { get; }

    /// <summary>Whether the top-k routing weights are renormalised to sum to 1.</summary>
    public bool NormTopkProb { get; }

    public int DecoderSparseStep { get; } = 1;
    public IReadOnlyList<int> MlpOnlyLayers { get; } = [];
    public QuantizationConfig? Quantization { get; }

    /// <summary>The parsed JSON object (the section, for nested configs), for fields this class does not model.</summary>
    public JsonElement Raw { get; }

    public bool IsMoe => NumExperts is > 0;

    /// <summary>Whether decoder layer <paramref name="layer"/> uses the sparse MoE block, by the rule of transformers' Qwen3-MoE.</summary>
    public bool IsSparseMoeLayer(int layer) =>
        IsMoe && !MlpOnlyLayers.Contains(layer) && (layer + 1) % DecoderSparseStep == 0;

    private bool IsQwen2Family => ModelType is "qwen2" or "qwen2_moe";

    /// <param name="section">Names of nested objects leading to the model's config, e.g. "thinker_config", "text_config".</param>
    public static HfModelConfig FromFile(string path, params string[] section)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"model config not found: {path}", path);
        return Parse(File.ReadAllText(path), path, section);
    }

    /// <param name="source">Names the JSON in error messages, typically its path.</param>
    public static HfModelConfig Parse(string json, string source, params string[] section)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not valid JSON: {e.Message}", e);
        }
        using (document)
            return FromJson(document.RootElement.Clone(), source, section);
    }

    /// <inheritdoc cref="Parse"/>
    public static HfModelConfig FromJson(JsonElement root, string source, params string[] section)
    {
        var json = ConfigJsonReader.Root(root, source);
        foreach (var name in section)
            json = json.RequiredObject(name);
        return new HfModelConfig(json);
    }

    private static int Positive(ConfigJsonReader json, string field, int value) =>
        value > 0 ? value : throw json.Error(field, $"must be positive, got {value}");

    private int DefaultHeadDim(ConfigJsonReader json) =>
        HiddenSize % NumAttentionHeads == 0
            ? HiddenSize / NumAttentionHeads
            : throw json.Error("head_dim", $"is absent and hidden_size ({HiddenSize}) is not a multiple of num_attention_heads ({NumAttentionHeads})");

    private static (double Theta, string Type) ReadRope(ConfigJsonReader json)
    {
        var sources = new List<(string Field, double Theta)>();
        var ropeType = "default";
        foreach (var name in new[] { "rope_parameters", "rope_scaling" })
        {
            if (json.OptionalObject(name) is not { } rope)
                continue;
            if (rope.OptionalDouble("rope_theta") is { } theta)
                sources.Add(($"{name}.rope_theta", theta));
            // Older rope_scaling objects call it "type".
            if ((rope.OptionalString("rope_type") ?? rope.OptionalString("type")) is { } type && ropeType == "default")
                ropeType = type;
        }
        if (json.OptionalDouble("rope_theta") is { } topLevel)
            sources.Add(("rope_theta", topLevel));

        if (sources.Count == 0)
            return (10000.0, ropeType);
        var (field, value) = sources[0];
        var conflict = sources.Find(other => other.Theta != value);
        if (conflict.Field is not null)
            throw json.Error(conflict.Field, $"({conflict.Theta}) disagrees with {field} ({value})");
        return (value, ropeType);
    }

    private static int? ReadNumExperts(ConfigJsonReader json)
    {
        var experts = json.OptionalInt("num_experts");
        var localExperts = json.OptionalInt("num_local_experts");
        if (experts is not null && localExperts is not null && experts != localExperts)
            throw json.Error("num_local_experts", $"({localExperts}) disagrees with num_experts ({experts})");
        var count = experts ?? localExperts;
        return count is < 0 ? throw json.Error(experts is null ? "num_local_experts" : "num_experts", $"must not be negative, got {count}") : count;
    }
}

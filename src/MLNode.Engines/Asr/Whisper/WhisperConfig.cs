using System.Text.Json;
using MLNode.Runtime.Checkpoints;

namespace MLNode.Engines.Asr.Whisper;

/// <summary>
/// A Whisper checkpoint's <c>config.json</c> (architecture) and <c>generation_config.json</c> (decoding: suppression
/// lists, timestamp limit, language and task ids). As transformers does, the generation fields come from
/// generation_config.json when the checkpoint ships one and from config.json otherwise; nothing is filled in from
/// built-in defaults, because the lists differ between checkpoints (the fixture's random model has no
/// <c>suppress_tokens</c> and begin-suppresses 50256, not the released models' 50257).
/// </summary>
public sealed class WhisperConfig
{
    private WhisperConfig(ConfigJsonReader json, ConfigJsonReader generation)
    {
        var modelType = json.OptionalString("model_type");
        if (modelType != "whisper") throw json.Error("model_type", $"must be \"whisper\", got {(modelType is null ? "nothing" : $"\"{modelType}\"")}");
        var activation = json.OptionalString("activation_function") ?? "gelu";
        if (activation != "gelu") throw json.Error("activation_function", $"must be \"gelu\" (exact GELU), got \"{activation}\"");

        DModel = Positive(json, "d_model");
        EncoderLayers = Positive(json, "encoder_layers");
        DecoderLayers = Positive(json, "decoder_layers");
        EncoderAttentionHeads = Heads(json, "encoder_attention_heads", DModel);
        DecoderAttentionHeads = Heads(json, "decoder_attention_heads", DModel);
        EncoderFfnDim = Positive(json, "encoder_ffn_dim");
        DecoderFfnDim = Positive(json, "decoder_ffn_dim");
        NumMelBins = Positive(json, "num_mel_bins");
        MaxSourcePositions = Positive(json, "max_source_positions");
        MaxTargetPositions = Positive(json, "max_target_positions");
        VocabSize = Positive(json, "vocab_size");
        ScaleEmbedding = json.OptionalBool("scale_embedding") ?? false;
        TieWordEmbeddings = json.OptionalBool("tie_word_embeddings") ?? true;
        DecoderStartTokenId = TokenId(json, "decoder_start_token_id", required: true)!.Value;
        EosTokenId = TokenId(json, "eos_token_id", required: true)!.Value;

        SuppressTokens = TokenIds(generation, "suppress_tokens");
        BeginSuppressTokens = TokenIds(generation, "begin_suppress_tokens");
        MaxInitialTimestampIndex = generation.OptionalInt("max_initial_timestamp_index");
        if (MaxInitialTimestampIndex < 0) throw generation.Error("max_initial_timestamp_index", $"must not be negative, got {MaxInitialTimestampIndex}");
        LangToId = TokenMap(generation, "lang_to_id");
        TaskToId = TokenMap(generation, "task_to_id");
        NoTimestampsTokenId = TokenId(generation, "no_timestamps_token_id", required: false);
        IsMultilingual = generation.OptionalBool("is_multilingual");
    }

    public int DModel { get; }
    public int EncoderLayers { get; }
    public int DecoderLayers { get; }
    public int EncoderAttentionHeads { get; }
    public int DecoderAttentionHeads { get; }
    public int EncoderFfnDim { get; }
    public int DecoderFfnDim { get; }
    public int NumMelBins { get; }

    /// <summary>Encoder positions (1500): the input is exactly twice as many mel frames, 30 s.</summary>
    public int MaxSourcePositions { get; }

    /// <summary>Decoder positions (448): prompt and generated tokens of one window together.</summary>
    public int MaxTargetPositions { get; }

    public int VocabSize { get; }

    /// <summary>Token embeddings are multiplied by √d_model (false in every released checkpoint).</summary>
    public bool ScaleEmbedding { get; }

    /// <summary>The output projection is the decoder's token embedding (true in every released checkpoint).</summary>
    public bool TieWordEmbeddings { get; }

    /// <summary>The mel frames one encoder pass takes: two per encoder position (conv2 has stride 2).</summary>
    public int InputFrames => 2 * MaxSourcePositions;

    public int DecoderStartTokenId { get; }
    public int EosTokenId { get; }

    /// <summary>Ids masked at every decoding step.</summary>
    public IReadOnlyList<int> SuppressTokens { get; }

    /// <summary>Ids masked at the first sampled step only (blank suppression: " " and end of text in released checkpoints).</summary>
    public IReadOnlyList<int> BeginSuppressTokens { get; }

    /// <summary>The latest timestamp (in 0.02 s steps after &lt;|0.00|&gt;) the first token may be; null: no limit.</summary>
    public int? MaxInitialTimestampIndex { get; }

    /// <summary>Language token ("&lt;|en|&gt;") to id, when generation_config.json lists them.</summary>
    public IReadOnlyDictionary<string, int>? LangToId { get; }

    /// <summary>"transcribe" / "translate" to id, when generation_config.json lists them.</summary>
    public IReadOnlyDictionary<string, int>? TaskToId { get; }

    public int? NoTimestampsTokenId { get; }

    /// <summary>Whether the model takes language and task tokens; null when the checkpoint does not say.</summary>
    public bool? IsMultilingual { get; }

    /// <summary>Reads config.json and, when present, generation_config.json from a checkpoint folder.</summary>
    public static WhisperConfig FromDirectory(string folder)
    {
        var configPath = Path.Combine(folder, "config.json");
        if (!File.Exists(configPath)) throw new FileNotFoundException($"model config not found: {configPath}", configPath);
        var generationPath = Path.Combine(folder, "generation_config.json");
        return Parse(File.ReadAllText(configPath), configPath,
            File.Exists(generationPath) ? File.ReadAllText(generationPath) : null, generationPath);
    }

    /// <param name="generationConfig">generation_config.json's text, or null when the checkpoint has none.</param>
    public static WhisperConfig Parse(string config, string configSource, string? generationConfig, string generationSource)
    {
        using var configDocument = ParseJson(config, configSource);
        var json = ConfigJsonReader.Root(configDocument.RootElement, configSource);
        if (generationConfig is null) return new WhisperConfig(json, json);
        using var generationDocument = ParseJson(generationConfig, generationSource);
        return new WhisperConfig(json, ConfigJsonReader.Root(generationDocument.RootElement, generationSource));
    }

    private static JsonDocument ParseJson(string text, string source)
    {
        try
        {
            return JsonDocument.Parse(text);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not valid JSON: {e.Message}", e);
        }
    }

    private int? TokenId(ConfigJsonReader json, string field, bool required)
    {
        var id = required ? json.RequiredInt(field) : json.OptionalInt(field);
        return id is null || (id >= 0 && id < VocabSize) ? id : throw json.Error(field, $"({id}) is not a token id of the {VocabSize}-token vocabulary");
    }

    private IReadOnlyList<int> TokenIds(ConfigJsonReader json, string field)
    {
        var ids = json.OptionalIntArray(field) ?? [];
        var outside = ids.Where(id => id < 0 || id >= VocabSize).ToArray();
        return outside.Length == 0 ? ids : throw json.Error(field, $"holds ids [{string.Join(',', outside)}] outside the {VocabSize}-token vocabulary");
    }

    private IReadOnlyDictionary<string, int>? TokenMap(ConfigJsonReader json, string field)
    {
        var map = json.OptionalIntMap(field);
        var outside = map?.Where(entry => entry.Value < 0 || entry.Value >= VocabSize).Select(entry => entry.Key).ToArray() ?? [];
        return outside.Length == 0 ? map : throw json.Error(field, $"maps [{string.Join(", ", outside)}] outside the {VocabSize}-token vocabulary");
    }

    private static int Positive(ConfigJsonReader json, string field)
    {
        var value = json.RequiredInt(field);
        return value > 0 ? value : throw json.Error(field, $"must be positive, got {value}");
    }

    private static int Heads(ConfigJsonReader json, string field, int width)
    {
        var heads = Positive(json, field);
        return width % heads == 0 ? heads : throw json.Error(field, $"({heads}) must divide d_model ({width})");
    }
}

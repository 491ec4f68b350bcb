using System.Text.Json;
using MLNode.Runtime.Checkpoints;

namespace MLNode.Engines.Asr.Qwen3Asr;

/// <summary>
/// A Qwen3-ASR <c>config.json</c>: <c>model_type</c> "qwen3_asr" with everything under <c>thinker_config</c> — the audio
/// encoder (<see cref="Audio"/>), the Qwen3 text decoder (<see cref="Text"/>, read by <see cref="HfModelConfig"/>) and
/// the ids of the audio placeholder tokens the prompt carries.
/// </summary>
public sealed class Qwen3AsrConfig
{
    public const string ModelTypeName = "qwen3_asr";

    private Qwen3AsrConfig(JsonElement root, string source)
    {
        var json = ConfigJsonReader.Root(root, source);
        ModelType = json.OptionalString("model_type") ?? throw json.Error("model_type", "is missing (expected a string)");
        if (ModelType != ModelTypeName)
            throw json.Error("model_type", $"is '{ModelType}', not '{ModelTypeName}'");
        var thinker = json.RequiredObject("thinker_config");
        Audio = new Qwen3AsrAudioConfig(thinker.RequiredObject("audio_config"));
        Text = HfModelConfig.FromJson(root, source, "thinker_config", "text_config");
        // Qwen3-ASR gives text and audio tokens the same position on all three MRoPE axes, so its rotary embedding
        // is exactly 1-D RoPE; a scaled scheme would not be.
        if (Text.RopeType is not ("default" or "mrope"))
            throw json.Error("thinker_config.text_config.rope_parameters", $"names rope type '{Text.RopeType}'; Qwen3-ASR's decoder uses plain (M)RoPE");
        AudioTokenId = thinker.RequiredInt("audio_token_id");
        AudioStartTokenId = thinker.RequiredInt("audio_start_token_id");
        if (Audio.OutputDim != Text.HiddenSize)
            throw json.Error("thinker_config.audio_config.output_dim", $"({Audio.OutputDim}) must equal the text decoder's hidden_size ({Text.HiddenSize})");
        foreach (var (field, id) in new[] { ("audio_token_id", AudioTokenId), ("audio_start_token_id", AudioStartTokenId) })
            if (id < 0 || id >= Text.VocabSize)
                throw thinker.Error(field, $"({id}) lies outside the vocabulary of {Text.VocabSize}");
    }

    public string ModelType { get; }
    public Qwen3AsrAudioConfig Audio { get; }
    public HfModelConfig Text { get; }

    /// <summary>The <c>&lt;|audio_pad|&gt;</c> placeholder: one per encoder output, replaced by its embedding.</summary>
    public int AudioTokenId { get; }

    /// <summary><c>&lt;|audio_start|&gt;</c>, written before the placeholders.</summary>
    public int AudioStartTokenId { get; }

    public static Qwen3AsrConfig FromFile(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"model config not found: {path}", path);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e);
        }
        using (document)
            return new Qwen3AsrConfig(document.RootElement.Clone(), path);
    }
}

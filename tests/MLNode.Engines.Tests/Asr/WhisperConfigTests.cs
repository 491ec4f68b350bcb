using MLNode.Engines.Asr.Whisper;

namespace MLNode.Engines.Tests.Asr;

public sealed class WhisperConfigTests
{
    private static string ConfigJson => File.ReadAllText(Path.Combine(TinyWhisper.Folder, "config.json"));
    private static string GenerationJson => File.ReadAllText(Path.Combine(TinyWhisper.Folder, "generation_config.json"));

    [Fact]
    public void The_fixture_reads_with_its_own_suppression_lists()
    {
        var config = WhisperConfig.FromDirectory(TinyWhisper.Folder);
        Assert.Equal((64, 2, 2, 4, 4, 128, 128), (config.DModel, config.EncoderLayers, config.DecoderLayers, config.EncoderAttentionHeads,
            config.DecoderAttentionHeads, config.EncoderFfnDim, config.DecoderFfnDim));
        Assert.Equal((128, 1500, 448, 51866, 3000), (config.NumMelBins, config.MaxSourcePositions, config.MaxTargetPositions, config.VocabSize, config.InputFrames));
        Assert.Equal((50258, 50257), (config.DecoderStartTokenId, config.EosTokenId));
        // The checkpoint's lists, not openai's defaults: nothing suppressed at every step, 220 and 50256 at the first.
        Assert.Empty(config.SuppressTokens);
        Assert.Equal([220, 50256], config.BeginSuppressTokens);
        Assert.Null(config.MaxInitialTimestampIndex);
        Assert.Null(config.LangToId);
    }

    [Fact]
    public void Generation_fields_come_from_generation_config_when_it_exists()
    {
        var config = WhisperConfig.Parse(ConfigJson, "config.json",
            """{"suppress_tokens": [1, 2], "begin_suppress_tokens": [220, 50257], "max_initial_timestamp_index": 50, "lang_to_id": {"<|en|>": 50259}, "task_to_id": {"transcribe": 50360}, "no_timestamps_token_id": 50364, "is_multilingual": true}""",
            "generation_config.json");
        Assert.Equal([1, 2], config.SuppressTokens);
        Assert.Equal([220, 50257], config.BeginSuppressTokens);
        Assert.Equal(50, config.MaxInitialTimestampIndex);
        Assert.Equal(50259, config.LangToId!["<|en|>"]);
        Assert.Equal(50360, config.TaskToId!["transcribe"]);
        Assert.Equal(50364, config.NoTimestampsTokenId);
        Assert.True(config.IsMultilingual);
    }

    [Fact]
    public void Without_generation_config_the_model_config_supplies_the_lists() =>
        Assert.Equal([220, 50256], WhisperConfig.Parse(ConfigJson, "config.json", null, "generation_config.json").BeginSuppressTokens);

    [Theory]
    [InlineData("\"d_model\": 64", "\"d_model\": 0", "'d_model' must be positive")]
    [InlineData("\"decoder_attention_heads\": 4", "\"decoder_attention_heads\": 5", "'decoder_attention_heads' (5) must divide d_model")]
    [InlineData("\"activation_function\": \"gelu\"", "\"activation_function\": \"relu\"", "'activation_function' must be \"gelu\"")]
    [InlineData("\"model_type\": \"whisper\"", "\"model_type\": \"qwen3\"", "'model_type' must be \"whisper\"")]
    [InlineData("\"num_mel_bins\": 128,", "", "'num_mel_bins' is missing")]
    public void Bad_configs_are_refused_naming_the_field(string field, string replacement, string message)
    {
        var e = Assert.Throws<InvalidDataException>(() => WhisperConfig.Parse(ConfigJson.Replace(field, replacement), "config.json", GenerationJson, "generation_config.json"));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Suppression_ids_outside_the_vocabulary_are_refused_naming_the_field()
    {
        var e = Assert.Throws<InvalidDataException>(() => WhisperConfig.Parse(ConfigJson, "config.json", """{"suppress_tokens": [3, 60000]}""", "generation_config.json"));
        Assert.Contains("generation_config.json: field 'suppress_tokens' holds ids [60000]", e.Message);
    }
}

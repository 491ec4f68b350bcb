using System.Text.Json.Nodes;
using MLNode.Runtime.Checkpoints;
using MLNode.Tests;

namespace MLNode.Runtime.Tests.Checkpoints;

public sealed class HfModelConfigTests
{
    [Fact]
    public void Reads_the_qwen3_fixture()
    {
        var config = HfModelConfig.FromFile(Fixtures.Path("llm", "qwen3-tiny", "config.json"));

        Assert.Equal("qwen3", config.ModelType);
        Assert.Equal(["Qwen3ForCausalLM"], config.Architectures);
        Assert.Equal((64, 160, 4, 4, 2, 16, 512), (config.HiddenSize, config.IntermediateSize, config.NumHiddenLayers,
            config.NumAttentionHeads, config.NumKeyValueHeads, config.HeadDim, config.VocabSize));
        Assert.Equal(1e-6, config.RmsNormEps);
        Assert.Equal(1_000_000.0, config.RopeTheta);
        Assert.Equal("default", config.RopeType);
        Assert.Equal(4096, config.MaxPositionEmbeddings);
        Assert.False(config.TieWordEmbeddings);
        Assert.Equal("bfloat16", config.DType);
        Assert.False(config.QkvBias);
        Assert.False(config.OutputProjectionBias);
        Assert.False(config.IsMoe);
        Assert.False(config.IsSparseMoeLayer(0));
        Assert.Null(config.Quantization);
    }

    [Fact]
    public void Reads_the_qwen2_fixture_with_its_implicit_head_dim_and_qkv_bias()
    {
        var config = HfModelConfig.FromFile(Fixtures.Path("llm", "qwen2-tiny", "config.json"));

        Assert.Equal("qwen2", config.ModelType);
        Assert.Equal(3, config.NumHiddenLayers);
        Assert.Equal(16, config.HeadDim); // 64 / 4: Qwen2 configs have no head_dim
        Assert.False(config.AttentionBias);
        Assert.True(config.QkvBias);
        Assert.False(config.OutputProjectionBias);
        Assert.Equal(1_000_000.0, config.RopeTheta);
    }

    [Fact]
    public void Reads_the_qwen3_moe_fixture()
    {
        var config = HfModelConfig.FromFile(Fixtures.Path("llm", "qwen3-moe-tiny", "config.json"));

        Assert.Equal("qwen3_moe", config.ModelType);
        Assert.True(config.IsMoe);
        Assert.Equal(8, config.NumExperts); // written as num_local_experts by transformers 5
        Assert.Equal(2, config.NumExpertsPerTok);
        Assert.Equal(48, config.MoeIntermediateSize);
        Assert.True(config.NormTopkProb);
        Assert.Equal(1, config.DecoderSparseStep);
        Assert.Empty(config.MlpOnlyLayers);
        Assert.All(Enumerable.Range(0, 3), layer => Assert.True(config.IsSparseMoeLayer(layer)));
        Assert.Equal(160, config.IntermediateSize);
    }

    [Fact]
    public void Reads_the_text_decoder_nested_in_the_qwen3_asr_config()
    {
        var path = Fixtures.Path("asr", "qwen3-asr-tiny", "config.json");

        var config = HfModelConfig.FromFile(path, "thinker_config", "text_config");

        Assert.Equal("qwen3_asr_text", config.ModelType);
        Assert.Empty(config.Architectures);
        Assert.Equal((96, 192, 2, 4, 2, 24, 600), (config.HiddenSize, config.IntermediateSize, config.NumHiddenLayers,
            config.NumAttentionHeads, config.NumKeyValueHeads, config.HeadDim, config.VocabSize));
        Assert.True(config.TieWordEmbeddings);
        Assert.Null(config.DType);
        Assert.Equal(1_000_000.0, config.RopeTheta);
        Assert.Equal([4, 4, 4], config.Raw.GetProperty("rope_parameters").GetProperty("mrope_section").EnumerateArray().Select(e => e.GetInt32()));
    }

    [Fact]
    public void Errors_name_the_file_and_the_nested_field()
    {
        var path = Fixtures.Path("asr", "qwen3-asr-tiny", "config.json");

        var root = Assert.Throws<InvalidDataException>(() => HfModelConfig.FromFile(path));
        var missing = Assert.Throws<InvalidDataException>(() => HfModelConfig.FromFile(path, "thinker_config", "speech_config"));
        var wrongType = Assert.Throws<InvalidDataException>(() => HfModelConfig.FromFile(path, "thinker_config", "audio_config", "n_window"));

        Assert.Equal($"{path}: field 'hidden_size' is missing (expected an integer)", root.Message);
        Assert.Equal($"{path}: field 'thinker_config.speech_config' is missing (expected an object)", missing.Message);
        Assert.Equal($"{path}: field 'thinker_config.audio_config.n_window' must be an object, got 50", wrongType.Message);
    }

    [Theory]
    [InlineData("\"hidden_size\": \"64\"", "field 'hidden_size' must be a 32-bit integer, got \"64\"")]
    [InlineData("\"hidden_size\": 64.5", "field 'hidden_size' must be a 32-bit integer, got 64.5")]
    [InlineData("\"hidden_size\": 0", "field 'hidden_size' must be positive, got 0")]
    [InlineData("\"num_key_value_heads\": 3", "field 'num_key_value_heads' (3) must divide num_attention_heads (4)")]
    [InlineData("\"tie_word_embeddings\": 1", "field 'tie_word_embeddings' must be a boolean, got 1")]
    [InlineData("\"rope_theta\": 10000.0", "field 'rope_theta' (10000) disagrees with rope_parameters.rope_theta (1000000)")]
    [InlineData("\"num_experts\": 4, \"num_local_experts\": 8", "field 'num_local_experts' (8) disagrees with num_experts (4)")]
    [InlineData("\"num_experts\": 4", "field 'num_experts_per_tok' is missing (expected an integer)")]
    [InlineData("\"num_experts\": 4, \"num_experts_per_tok\": 5, \"moe_intermediate_size\": 8", "field 'num_experts_per_tok' (5) must lie in 1..4")]
    [InlineData("\"num_experts\": 4, \"num_experts_per_tok\": 2, \"moe_intermediate_size\": 8, \"mlp_only_layers\": [0, 7]", "field 'mlp_only_layers' names layers [7] outside 0..3")]
    [InlineData("\"quantization_config\": {\"quant_method\": \"fp8\", \"weight_block_size\": [128]}", "field 'quantization_config.weight_block_size' must be two positive integers, got [128]")]
    [InlineData("\"quantization_config\": {\"fmt\": \"e4m3\"}", "field 'quantization_config.quant_method' is missing")]
    public void Invalid_fields_are_named(string fields, string problem)
    {
        var error = Assert.Throws<InvalidDataException>(() => HfModelConfig.Parse(Qwen3With(fields), "test.json"));

        Assert.StartsWith("test.json: ", error.Message);
        Assert.Contains(problem, error.Message);
    }

    [Fact]
    public void Reads_block_scaled_fp8_quantisation()
    {
        var config = HfModelConfig.Parse(Qwen3With("""
            "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                    "weight_block_size": [128, 128], "modules_to_not_convert": ["lm_head"]}
            """), "test.json");

        Assert.Equal(new QuantizationConfig("fp8", "e4m3", config.Quantization!.WeightBlockSize, "dynamic", config.Quantization.ModulesToNotConvert), config.Quantization);
        Assert.Equal([128, 128], config.Quantization.WeightBlockSize!);
        Assert.Equal(["lm_head"], config.Quantization.ModulesToNotConvert);
    }

    [Fact]
    public void Applies_the_transformers_defaults_and_the_sparse_layer_rule()
    {
        var config = HfModelConfig.Parse("""
            {"model_type": "qwen3_moe", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 6,
             "num_attention_heads": 4, "vocab_size": 100, "torch_dtype": "float16", "head_dim": null,
             "rope_scaling": {"type": "yarn", "factor": 4.0}, "attention_bias": true,
             "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32,
             "decoder_sparse_step": 2, "mlp_only_layers": [3]}
            """, "test.json");

        Assert.Equal(4, config.NumKeyValueHeads);
        Assert.Equal(16, config.HeadDim);
        Assert.Equal(1e-6, config.RmsNormEps);
        Assert.Equal(10000.0, config.RopeTheta);
        Assert.Equal("yarn", config.RopeType);
        Assert.Equal(32768, config.MaxPositionEmbeddings);
        Assert.Equal("float16", config.DType);
        Assert.True(config.QkvBias);
        Assert.True(config.OutputProjectionBias);
        Assert.False(config.NormTopkProb);
        Assert.Equal([false, true, false, false, false, true], Enumerable.Range(0, 6).Select(config.IsSparseMoeLayer));
    }

    [Fact]
    public void A_missing_file_and_invalid_json_are_reported_with_the_path()
    {
        Assert.Contains("model config not found: /nonexistent/config.json",
            Assert.Throws<FileNotFoundException>(() => HfModelConfig.FromFile("/nonexistent/config.json")).Message);
        Assert.StartsWith("broken.json: not valid JSON",
            Assert.Throws<InvalidDataException>(() => HfModelConfig.Parse("{\"hidden_size\": ", "broken.json")).Message);
    }

    /// <summary>A minimal Qwen3 config with <paramref name="fields"/> (JSON members) added or replacing its own.</summary>
    private static string Qwen3With(string fields)
    {
        var config = JsonNode.Parse("""
            {"model_type": "qwen3", "hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 4,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 512,
             "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"}}
            """)!.AsObject();
        foreach (var (name, value) in JsonNode.Parse($"{{{fields}}}")!.AsObject().ToArray())
            config[name] = value?.DeepClone();
        return config.ToJsonString();
    }
}

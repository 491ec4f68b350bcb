using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using MLNode.Engines.Asr.Whisper;
using MLNode.Engines.Llm.Tokenization;
using MLNode.Protocol.Poc;
using MLNode.Runtime.Checkpoints;

namespace MLNode.Engines.Demo;

/// <summary>
/// Built-in demo models: tiny, with weights drawn from a fixed seed, written in HF layout so that they
/// load through exactly the code path of a real checkpoint. Generation is byte-for-byte deterministic on
/// every machine (the PoC normal generator, bf16 by round-to-nearest-even, a canonical safetensors
/// writer), so models.json pins their SHA-256s like any other model's. Their output is meaningless.
/// </summary>
public static class DemoModels
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    // Writes "<|en|>" as HF does rather than "\u003C|en|\u003E" (the files are never embedded in HTML).
    private static readonly JsonSerializerOptions Unescaped = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private static readonly JsonSerializerOptions UnescapedIndented = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The architectures a demo can be generated for, by registry architecture name.</summary>
    public static bool CanGenerate(string architecture) => architecture is "qwen3" or "whisper";

    /// <summary>Writes the demo model for <paramref name="id"/> into <paramref name="folder"/> (atomically: all files or none).</summary>
    public static void Write(string id, string architecture, string folder)
    {
        if (!CanGenerate(architecture))
            throw new ArgumentException($"no demo generator for architecture '{architecture}'", nameof(architecture));
        var staging = folder + ".partial";
        if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        Directory.CreateDirectory(staging);
        if (architecture == "whisper") WriteWhisper(id, staging);
        else WriteQwen3(id, staging);
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        Directory.Move(staging, folder);
    }

    private static void WriteQwen3(string id, string folder)
    {
        var config = Qwen3Config();
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString(Indented) + "\n");
        File.WriteAllText(Path.Combine(folder, "generation_config.json"), "{\n  \"do_sample\": false,\n  \"eos_token_id\": 511\n}\n");
        SafetensorsWriter.Write(Path.Combine(folder, "model.safetensors"), Qwen3Tensors(id, config));
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), ByteTokenizer(SpecialTokens, new JsonObject { ["type"] = "NFC" }, QwenPreTokenizer()).ToJsonString() + "\n");
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), TokenizerConfig().ToJsonString(Indented) + "\n");
    }

    private static JsonObject Qwen3Config() => new()
    {
        ["architectures"] = new JsonArray("Qwen3ForCausalLM"),
        ["model_type"] = "qwen3",
        ["hidden_size"] = 64,
        ["intermediate_size"] = 160,
        ["num_hidden_layers"] = 2,
        ["num_attention_heads"] = 4,
        ["num_key_value_heads"] = 2,
        ["head_dim"] = 16,
        ["vocab_size"] = 512,
        ["max_position_embeddings"] = 4096,
        ["rms_norm_eps"] = 1e-6,
        ["rope_theta"] = 1000000.0,
        ["tie_word_embeddings"] = true,
        ["attention_bias"] = false,
        ["dtype"] = "bfloat16",
        ["eos_token_id"] = 511,
    };

    /// <summary>
    /// A byte-level BPE layout with the 256 byte tokens as ids 0–255 and no merges, plus the model's special tokens
    /// (Qwen's three as the last ids of its 512-row vocabulary, Whisper's control tokens from 256 on): every text
    /// encodes, one byte per token.
    /// </summary>
    private static JsonObject ByteTokenizer(IEnumerable<(string Token, int Id)> specialTokens, JsonObject? normalizer, JsonObject preTokenizer)
    {
        var vocab = new JsonObject();
        for (var b = 0; b < 256; b++) vocab[ByteLevelAlphabet.ToChar((byte)b).ToString()] = b;
        var added = new JsonArray();
        foreach (var (token, tokenId) in specialTokens)
            added.Add(new JsonObject
            {
                ["id"] = tokenId, ["content"] = token, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                ["normalized"] = false, ["special"] = true,
            });
        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = normalizer,
            ["pre_tokenizer"] = preTokenizer,
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray() },
        };
    }

    private static JsonObject QwenPreTokenizer() => new()
    {
        ["type"] = "Sequence",
        ["pretokenizers"] = new JsonArray(
            new JsonObject
            {
                ["type"] = "Split",
                ["pattern"] = new JsonObject { ["Regex"] = QwenPreTokenizerRegex },
                ["behavior"] = "Isolated",
                ["invert"] = false,
            },
            new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false }),
    };

    private const string QwenPreTokenizerRegex =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private static readonly (string Token, int Id)[] SpecialTokens = [("<|endoftext|>", 509), ("<|im_start|>", 510), ("<|im_end|>", 511)];

    private static JsonObject TokenizerConfig() => new()
    {
        ["tokenizer_class"] = "Qwen2Tokenizer",
        ["eos_token"] = "<|im_end|>",
        ["pad_token"] = "<|endoftext|>",
        ["chat_template"] = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
        ["model_max_length"] = 4096,
    };

    private static IEnumerable<SafetensorsEntry> Qwen3Tensors(string id, JsonObject c)
    {
        int d = (int)c["hidden_size"]!, ff = (int)c["intermediate_size"]!, layers = (int)c["num_hidden_layers"]!;
        int q = (int)c["num_attention_heads"]! * (int)c["head_dim"]!, kv = (int)c["num_key_value_heads"]! * (int)c["head_dim"]!;
        int headDim = (int)c["head_dim"]!, vocab = (int)c["vocab_size"]!;
        yield return Random(id, "model.embed_tokens.weight", vocab, d);
        yield return Ones("model.norm.weight", d);
        for (var i = 0; i < layers; i++)
        {
            var p = $"model.layers.{i}";
            yield return Ones($"{p}.input_layernorm.weight", d);
            yield return Ones($"{p}.post_attention_layernorm.weight", d);
            yield return Random(id, $"{p}.self_attn.q_proj.weight", q, d);
            yield return Random(id, $"{p}.self_attn.k_proj.weight", kv, d);
            yield return Random(id, $"{p}.self_attn.v_proj.weight", kv, d);
            yield return Random(id, $"{p}.self_attn.o_proj.weight", d, q);
            yield return Ones($"{p}.self_attn.q_norm.weight", headDim);
            yield return Ones($"{p}.self_attn.k_norm.weight", headDim);
            yield return Random(id, $"{p}.mlp.gate_proj.weight", ff, d);
            yield return Random(id, $"{p}.mlp.up_proj.weight", ff, d);
            yield return Random(id, $"{p}.mlp.down_proj.weight", d, ff);
        }
    }

    /// <summary>
    /// A Whisper of tiny proportions (d_model 64, 2 + 2 layers, 80 mel bins) with full-size positions (30 s windows,
    /// 448 decoder positions) and Whisper's control tokens after the 256 byte tokens, named in generation_config.json
    /// as released checkpoints name them: it exercises every decoding rule, language detection and timestamps.
    /// </summary>
    private static void WriteWhisper(string id, string folder)
    {
        var special = WhisperTokenizer.OpenAiSpecialTokens(WhisperLanguages.Codes.Count).Select((token, i) => (Token: token, Id: 256 + i)).ToArray();
        int Id(string token) => special.First(s => s.Token == token).Id;
        var config = WhisperConfigJson(vocabulary: 256 + special.Length, startOfTranscript: Id("<|startoftranscript|>"), endOfText: Id("<|endoftext|>"));
        var generation = new JsonObject
        {
            // Blank suppression: " " (the byte 0x20 is token 32 here) and the end of text.
            ["begin_suppress_tokens"] = new JsonArray(0x20, Id("<|endoftext|>")),
            ["bos_token_id"] = Id("<|endoftext|>"),
            ["decoder_start_token_id"] = Id("<|startoftranscript|>"),
            ["eos_token_id"] = Id("<|endoftext|>"),
            ["is_multilingual"] = true,
            ["lang_to_id"] = new JsonObject(WhisperLanguages.Codes.Select(code => KeyValuePair.Create(WhisperLanguages.Token(code), (JsonNode?)Id(WhisperLanguages.Token(code))))),
            ["max_initial_timestamp_index"] = 50,
            ["max_length"] = 448,
            ["no_timestamps_token_id"] = Id("<|notimestamps|>"),
            ["pad_token_id"] = Id("<|endoftext|>"),
            ["prev_sot_token_id"] = Id("<|startofprev|>"),
            // openai's suppress_tokens="-1" control tokens; a byte vocabulary has no non-speech symbols to add.
            ["suppress_tokens"] = new JsonArray(Id("<|translate|>"), Id("<|transcribe|>"), Id("<|startoftranscript|>"), Id("<|startoflm|>"), Id("<|startofprev|>"), Id("<|nospeech|>")),
            ["task_to_id"] = new JsonObject { ["transcribe"] = Id("<|transcribe|>"), ["translate"] = Id("<|translate|>") },
        };
        var preprocessor = new JsonObject
        {
            ["chunk_length"] = 30, ["feature_extractor_type"] = "WhisperFeatureExtractor", ["feature_size"] = 80, ["hop_length"] = 160,
            ["n_fft"] = 400, ["n_samples"] = 480000, ["nb_max_frames"] = 3000, ["padding_side"] = "right", ["padding_value"] = 0.0,
            ["return_attention_mask"] = false, ["sampling_rate"] = 16000,
        };
        var byteLevel = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true };
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString(Indented) + "\n");
        File.WriteAllText(Path.Combine(folder, "generation_config.json"), generation.ToJsonString(UnescapedIndented) + "\n");
        File.WriteAllText(Path.Combine(folder, "preprocessor_config.json"), preprocessor.ToJsonString(Indented) + "\n");
        SafetensorsWriter.Write(Path.Combine(folder, "model.safetensors"), WhisperTensors(id, config));
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), ByteTokenizer(special, null, byteLevel).ToJsonString(Unescaped) + "\n");
    }

    private static JsonObject WhisperConfigJson(int vocabulary, int startOfTranscript, int endOfText) => new()
    {
        ["architectures"] = new JsonArray("WhisperForConditionalGeneration"),
        ["model_type"] = "whisper",
        ["activation_function"] = "gelu",
        ["d_model"] = 64,
        ["encoder_layers"] = 2,
        ["decoder_layers"] = 2,
        ["encoder_attention_heads"] = 4,
        ["decoder_attention_heads"] = 4,
        ["encoder_ffn_dim"] = 128,
        ["decoder_ffn_dim"] = 128,
        ["num_mel_bins"] = 80,
        ["max_source_positions"] = 1500,
        ["max_target_positions"] = 448,
        ["vocab_size"] = vocabulary,
        ["scale_embedding"] = false,
        ["tie_word_embeddings"] = true,
        ["decoder_start_token_id"] = startOfTranscript,
        ["bos_token_id"] = endOfText,
        ["eos_token_id"] = endOfText,
        ["pad_token_id"] = endOfText,
        ["dtype"] = "bfloat16",
    };

    private static IEnumerable<SafetensorsEntry> WhisperTensors(string id, JsonObject c)
    {
        int d = (int)c["d_model"]!, mels = (int)c["num_mel_bins"]!, vocab = (int)c["vocab_size"]!;
        IEnumerable<SafetensorsEntry> Attention(string p) =>
        [
            Random(id, $"{p}.q_proj.weight", d, d), Zeros($"{p}.q_proj.bias", d),
            Random(id, $"{p}.k_proj.weight", d, d),
            Random(id, $"{p}.v_proj.weight", d, d), Zeros($"{p}.v_proj.bias", d),
            Random(id, $"{p}.out_proj.weight", d, d), Zeros($"{p}.out_proj.bias", d),
        ];
        IEnumerable<SafetensorsEntry> Norm(string p) => [Ones($"{p}.weight", d), Zeros($"{p}.bias", d)];
        IEnumerable<SafetensorsEntry> FeedForward(string p, int ffn) =>
            [Random(id, $"{p}.fc1.weight", ffn, d), Zeros($"{p}.fc1.bias", ffn), Random(id, $"{p}.fc2.weight", d, ffn), Zeros($"{p}.fc2.bias", d)];

        var encoder = new List<SafetensorsEntry>
        {
            Random(id, "model.encoder.conv1.weight", d, mels, 3), Zeros("model.encoder.conv1.bias", d),
            Random(id, "model.encoder.conv2.weight", d, d, 3), Zeros("model.encoder.conv2.bias", d),
            Random(id, "model.encoder.embed_positions.weight", (int)c["max_source_positions"]!, d),
        };
        for (var i = 0; i < (int)c["encoder_layers"]!; i++)
        {
            var p = $"model.encoder.layers.{i}";
            encoder.AddRange([.. Attention($"{p}.self_attn"), .. Norm($"{p}.self_attn_layer_norm"), .. FeedForward(p, (int)c["encoder_ffn_dim"]!), .. Norm($"{p}.final_layer_norm")]);
        }
        encoder.AddRange(Norm("model.encoder.layer_norm"));

        var decoder = new List<SafetensorsEntry>
        {
            Random(id, "model.decoder.embed_tokens.weight", vocab, d),
            Random(id, "model.decoder.embed_positions.weight", (int)c["max_target_positions"]!, d),
        };
        for (var i = 0; i < (int)c["decoder_layers"]!; i++)
        {
            var p = $"model.decoder.layers.{i}";
            decoder.AddRange([.. Attention($"{p}.self_attn"), .. Norm($"{p}.self_attn_layer_norm"), .. Attention($"{p}.encoder_attn"),
                .. Norm($"{p}.encoder_attn_layer_norm"), .. FeedForward(p, (int)c["decoder_ffn_dim"]!), .. Norm($"{p}.final_layer_norm")]);
        }
        decoder.AddRange(Norm("model.decoder.layer_norm"));
        return [.. encoder, .. decoder];
    }

    /// <summary>N(0, 0.02²) from the PoC generator seeded by the model id and tensor name, in bf16.</summary>
    private static SafetensorsEntry Random(string id, string name, params int[] shape)
    {
        var values = PocRandom.Normal(PocSeeds.Seed32($"{id}/{name}"), shape.Aggregate(1, (n, d) => n * d));
        for (var i = 0; i < values.Length; i++) values[i] *= 0.02f;
        return new SafetensorsEntry(name, SafetensorsDType.BF16, [.. shape.Select(d => (long)d)], ToBf16(values));
    }

    private static SafetensorsEntry Ones(string name, int size) =>
        new(name, SafetensorsDType.BF16, [size], ToBf16(Enumerable.Repeat(1f, size).ToArray()));

    private static SafetensorsEntry Zeros(string name, int size) =>
        new(name, SafetensorsDType.BF16, [size], ToBf16(new float[size]));

    /// <summary>float32 → bf16 by round-to-nearest-even on the bit pattern (what torch does for finite values).</summary>
    private static byte[] ToBf16(float[] values)
    {
        var bytes = new byte[values.Length * 2];
        for (var i = 0; i < values.Length; i++)
        {
            var bits = BitConverter.SingleToUInt32Bits(values[i]);
            var rounded = (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
            bytes[2 * i] = (byte)rounded;
            bytes[2 * i + 1] = (byte)(rounded >> 8);
        }
        return bytes;
    }
}

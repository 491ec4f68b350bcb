using System.Text.Json;
using System.Text.Json.Nodes;
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
    /// <summary>The architectures a demo can be generated for, by registry architecture name.</summary>
    public static bool CanGenerate(string architecture) => architecture == "qwen3";

    /// <summary>Writes the demo model for <paramref name="id"/> into <paramref name="folder"/> (atomically: all files or none).</summary>
    public static void Write(string id, string architecture, string folder)
    {
        if (!CanGenerate(architecture))
            throw new ArgumentException($"no demo generator for architecture '{architecture}'", nameof(architecture));
        var staging = folder + ".partial";
        if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        Directory.CreateDirectory(staging);
        var config = Qwen3Config();
        File.WriteAllText(Path.Combine(staging, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        File.WriteAllText(Path.Combine(staging, "generation_config.json"), "{\n  \"do_sample\": false,\n  \"eos_token_id\": 511\n}\n");
        SafetensorsWriter.Write(Path.Combine(staging, "model.safetensors"), Qwen3Tensors(id, config));
        File.WriteAllText(Path.Combine(staging, "tokenizer.json"), ByteTokenizer().ToJsonString() + "\n");
        File.WriteAllText(Path.Combine(staging, "tokenizer_config.json"), TokenizerConfig().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        Directory.Move(staging, folder);
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
    /// Qwen's byte-level BPE layout with the 256 byte tokens as ids 0–255 and no merges, plus Qwen's three
    /// special tokens as the last ids of the 512-row vocabulary: every text encodes, one byte per token.
    /// </summary>
    private static JsonObject ByteTokenizer()
    {
        var vocab = new JsonObject();
        for (var b = 0; b < 256; b++) vocab[ByteLevelAlphabet.ToChar((byte)b).ToString()] = b;
        var added = new JsonArray();
        foreach (var (token, tokenId) in SpecialTokens)
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
            ["normalizer"] = new JsonObject { ["type"] = "NFC" },
            ["pre_tokenizer"] = new JsonObject
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
            },
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray() },
        };
    }

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

    /// <summary>N(0, 0.02²) from the PoC generator seeded by the model id and tensor name, in bf16.</summary>
    private static SafetensorsEntry Random(string id, string name, int rows, int cols)
    {
        var values = PocRandom.Normal(PocSeeds.Seed32($"{id}/{name}"), rows * cols);
        for (var i = 0; i < values.Length; i++) values[i] *= 0.02f;
        return new SafetensorsEntry(name, SafetensorsDType.BF16, [rows, cols], ToBf16(values));
    }

    private static SafetensorsEntry Ones(string name, int size) =>
        new(name, SafetensorsDType.BF16, [size], ToBf16(Enumerable.Repeat(1f, size).ToArray()));

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

using System.Text.Json;
using System.Text.Json.Nodes;
using MLNode.Engines.Llm.Tokenization;
using MLNode.Tests;

namespace MLNode.Engines.Tests.Tokenization;

/// <summary>
/// A tokenizer shipped as vocab.json + merges.txt + tokenizer_config.json's added_tokens_decoder (Qwen3-ASR's layout)
/// loads to the same tokenizer as its tokenizer.json: the tiny fixture's files rewritten in that layout encode every case
/// of encodings.json to the ids HF tokenizers gave.
/// </summary>
public sealed class Qwen2TokenizerFilesTests
{
    [Fact]
    public void Vocab_and_merges_encode_like_the_tokenizer_json()
    {
        var folder = Directory.CreateTempSubdirectory("qwen2-tokenizer-files").FullName;
        try
        {
            var source = JsonNode.Parse(File.ReadAllText(Fixtures.Path("llm", "tokenizer-tiny", "tokenizer.json")))!;
            File.WriteAllText(Path.Combine(folder, "vocab.json"), source["model"]!["vocab"]!.ToJsonString());
            var merges = source["model"]!["merges"]!.AsArray().Select(m => m is JsonArray pair ? $"{pair[0]} {pair[1]}" : m!.GetValue<string>());
            File.WriteAllLines(Path.Combine(folder, "merges.txt"), ["#version: 0.2", .. merges]);
            var config = JsonNode.Parse(File.ReadAllText(Fixtures.Path("llm", "tokenizer-tiny", "tokenizer_config.json")))!.AsObject();
            var decoder = new JsonObject();
            foreach (var token in source["added_tokens"]!.AsArray())
            {
                var entry = token!.DeepClone().AsObject();
                var id = entry["id"]!.GetValue<int>();
                entry.Remove("id");
                decoder[id.ToString(System.Globalization.CultureInfo.InvariantCulture)] = entry;
            }
            config["added_tokens_decoder"] = decoder;
            File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), config.ToJsonString());

            Assert.True(ByteLevelBpeTokenizer.ExistsIn(folder));
            var tokenizer = ByteLevelBpeTokenizer.FromDirectory(folder);
            Assert.Equal(511, tokenizer.TokenToId("<|im_end|>"));
            Assert.Equal(511, tokenizer.EosTokenId);
            using var cases = JsonDocument.Parse(File.ReadAllText(Fixtures.Path("llm", "tokenizer-tiny", "encodings.json")));
            var count = 0;
            foreach (var c in cases.RootElement.GetProperty("cases").EnumerateArray())
            {
                var text = c.GetProperty("text").GetString()!;
                Assert.Equal(c.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()), tokenizer.Encode(text));
                count++;
            }
            Assert.True(count > 0);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}

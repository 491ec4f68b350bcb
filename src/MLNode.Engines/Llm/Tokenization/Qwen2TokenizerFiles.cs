using System.Text.Json;
using System.Text.Json.Nodes;

namespace MLNode.Engines.Llm.Tokenization;

/// <summary>
/// A Qwen tokenizer shipped as <c>vocab.json</c> + <c>merges.txt</c> (with its added tokens in <c>tokenizer_config.json</c>'s
/// <c>added_tokens_decoder</c>), as Qwen3-ASR is, turned into the <c>tokenizer.json</c> transformers' Qwen2 converter makes
/// of those files: NFC, Qwen's split regex then byte-level without a prefix space, BPE, byte-level decoding.
/// </summary>
internal static class Qwen2TokenizerFiles
{
    private const string SplitPattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public static bool ArePresent(string folder) =>
        File.Exists(Path.Combine(folder, "vocab.json")) && File.Exists(Path.Combine(folder, "merges.txt"));

    public static JsonDocument ToTokenizerJson(string folder)
    {
        var vocab = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "vocab.json"))) as JsonObject
            ?? throw new InvalidDataException($"{folder}/vocab.json is not a JSON object");
        var tokenizer = new JsonObject
        {
            ["added_tokens"] = AddedTokens(Path.Combine(folder, "tokenizer_config.json")),
            ["normalizer"] = new JsonObject { ["type"] = "NFC" },
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = SplitPattern }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = false }),
            },
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = Merges(Path.Combine(folder, "merges.txt")) },
        };
        return JsonDocument.Parse(tokenizer.ToJsonString());
    }

    /// <summary>One "a b" merge per line, as Qwen2Tokenizer reads them: a first "#version:" line and blank lines are skipped.</summary>
    private static JsonArray Merges(string path)
    {
        var merges = new JsonArray();
        var lines = File.ReadAllLines(path);
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || (i == 0 && line.StartsWith("#version:", StringComparison.Ordinal))) continue;
            merges.Add(line);
        }
        return merges;
    }

    /// <summary><c>added_tokens_decoder</c> {"id": {content, lstrip, rstrip, normalized, single_word, special}} as tokenizer.json's list.</summary>
    private static JsonArray AddedTokens(string configPath)
    {
        var added = new JsonArray();
        if (!File.Exists(configPath)) return added;
        if (JsonNode.Parse(File.ReadAllText(configPath))?["added_tokens_decoder"] is not JsonObject decoder) return added;
        foreach (var (id, token) in decoder.OrderBy(entry => int.Parse(entry.Key, System.Globalization.CultureInfo.InvariantCulture)))
        {
            var entry = token!.DeepClone().AsObject();
            entry["id"] = int.Parse(id, System.Globalization.CultureInfo.InvariantCulture);
            added.Add(entry);
        }
        return added;
    }
}

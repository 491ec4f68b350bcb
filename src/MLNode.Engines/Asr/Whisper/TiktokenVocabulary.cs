using System.Text.Json;
using System.Text.Json.Nodes;
using MLNode.Engines.Llm.Tokenization;

namespace MLNode.Engines.Asr.Whisper;

/// <summary>
/// openai's <c>*.tiktoken</c> rank files (one "base64-bytes rank" per line) in the layout of a HF <c>tokenizer.json</c>,
/// so that <see cref="ByteLevelBpeTokenizer"/> encodes with them. tiktoken merges, at every step, the adjacent pair
/// whose concatenation has the lowest rank; BPE with one merge per way of splitting each token, ordered by the rank
/// of what it makes, does the same (transformers' tiktoken converter builds the same list). Pre-tokenization is
/// GPT-2's regex, which tiktoken's Whisper encodings use.
/// </summary>
public static class TiktokenVocabulary
{
    /// <summary>Ranks of <paramref name="path"/>: token bytes by rank, ranks 0 … n−1 each exactly once.</summary>
    public static byte[][] ReadRanks(string path)
    {
        var tokens = new List<(int Rank, byte[] Bytes)>();
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (line.Length == 0) continue;
            var parts = line.Split(' ');
            if (parts.Length != 2 || !int.TryParse(parts[1], out var rank))
                throw new InvalidDataException($"{path}:{lineNumber}: expected \"<base64 token> <rank>\"");
            // openai's multilingual file holds one empty token, written "=", which .NET's strict decoder refuses.
            var bytes = parts[0].Trim('=').Length == 0 ? [] : Convert.FromBase64String(parts[0]);
            tokens.Add((rank, bytes));
        }
        var ranks = new byte[tokens.Count][];
        foreach (var (rank, bytes) in tokens)
        {
            if (rank < 0 || rank >= ranks.Length || ranks[rank] is not null)
                throw new InvalidDataException($"{path}: rank {rank} is out of 0..{ranks.Length - 1} or listed twice");
            ranks[rank] = bytes;
        }
        return ranks;
    }

    /// <summary>A tokenizer.json document over <paramref name="ranks"/>, with <paramref name="specialTokens"/> appended as special added tokens from id ranks.Length on.</summary>
    public static JsonObject TokenizerJson(byte[][] ranks, IReadOnlyList<string> specialTokens)
    {
        var vocab = new JsonObject();
        var texts = ranks.Select(bytes => ByteLevelAlphabet.ToText(bytes)).ToArray();
        var idOf = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var rank = 0; rank < texts.Length; rank++)
        {
            if (idOf.TryAdd(texts[rank], rank)) vocab[texts[rank]] = rank;
        }
        var merges = new JsonArray();
        for (var rank = 0; rank < ranks.Length; rank++)
        {
            var bytes = ranks[rank];
            for (var split = 1; split < bytes.Length; split++)
            {
                var left = ByteLevelAlphabet.ToText(bytes.AsSpan(0, split));
                var right = ByteLevelAlphabet.ToText(bytes.AsSpan(split));
                if (idOf.ContainsKey(left) && idOf.ContainsKey(right)) merges.Add(new JsonArray(left, right));
            }
        }
        var added = new JsonArray();
        for (var i = 0; i < specialTokens.Count; i++)
            added.Add(new JsonObject
            {
                ["id"] = ranks.Length + i, ["content"] = specialTokens[i], ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                ["normalized"] = false, ["special"] = true,
            });
        return new JsonObject
        {
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = merges },
        };
    }

    /// <summary>A tokenizer over the rank file with the special tokens appended.</summary>
    public static ByteLevelBpeTokenizer Load(string path, Func<int, IReadOnlyList<string>> specialTokens)
    {
        var ranks = ReadRanks(path);
        using var document = JsonDocument.Parse(TokenizerJson(ranks, specialTokens(ranks.Length)).ToJsonString());
        return ByteLevelBpeTokenizer.FromJson(document.RootElement, TokenizerConfig.None);
    }
}

using System.Text.Json;
using System.Text.Json.Nodes;
using MLNode.Engines.Llm.Tokenization;
using MLNode.Tests;

namespace MLNode.Engines.Tests.Tokenization;

/// <summary>The llm/tokenizer-tiny fixture: its tokenizer, its reference encodings, and edited copies of it.</summary>
internal static class TinyTokenizer
{
    public static ByteLevelBpeTokenizer Instance { get; } = ByteLevelBpeTokenizer.FromDirectory(Fixtures.Path("llm", "tokenizer-tiny"));

    public static JsonElement Encodings { get; } = JsonDocument.Parse(File.ReadAllText(Fixtures.Path("llm", "tokenizer-tiny", "encodings.json"))).RootElement;

    /// <summary>Ids from tokenizers.js for strings the fixture lacks (see make_tokenizersjs_encodings.mjs).</summary>
    public static JsonElement TokenizersJsEncodings { get; } = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Tokenization", "tokenizersjs_encodings.json"))).RootElement;

    /// <summary>A tokenizer from the fixture's tokenizer.json after <paramref name="edit"/>.</summary>
    public static ByteLevelBpeTokenizer Edited(Action<JsonObject> edit)
    {
        var json = JsonNode.Parse(File.ReadAllText(Fixtures.Path("llm", "tokenizer-tiny", "tokenizer.json")))!.AsObject();
        edit(json);
        var path = Path.Combine(Path.GetTempPath(), $"tokenizer-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json.ToJsonString());
        try
        {
            return ByteLevelBpeTokenizer.FromFiles(path, TokenizerConfig.None);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>The id of the single-byte token for <paramref name="value"/>.</summary>
    public static int ByteToken(byte value) => Instance.TokenToId(ByteLevelAlphabet.ToChar(value).ToString())!.Value;
}

using System.Text.Json;

namespace MLNode.Engines.Llm.Tokenization;

/// <summary>What a <c>tokenizer_config.json</c> says about special tokens and the chat template.</summary>
public sealed record TokenizerConfig(string? EosToken, string? PadToken, string? BosToken, string? ChatTemplate)
{
    public static TokenizerConfig None { get; } = new(null, null, null, null);

    public static TokenizerConfig FromFile(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        return FromJson(document.RootElement);
    }

    public static TokenizerConfig FromJson(JsonElement config) =>
        new(TokenContent(config, "eos_token"), TokenContent(config, "pad_token"), TokenContent(config, "bos_token"), ChatTemplateOf(config));

    // A special token is written either as its text or as a serialized AddedToken object.
    private static string? TokenContent(JsonElement config, string name) =>
        !config.TryGetProperty(name, out var token) ? null : token.ValueKind switch
        {
            JsonValueKind.String => token.GetString(),
            JsonValueKind.Object when token.TryGetProperty("content", out var content) => content.GetString(),
            _ => null,
        };

    // Either one template, or a list of named templates of which "default" is the chat one.
    private static string? ChatTemplateOf(JsonElement config) =>
        !config.TryGetProperty("chat_template", out var template) ? null : template.ValueKind switch
        {
            JsonValueKind.String => template.GetString(),
            JsonValueKind.Array => template.EnumerateArray()
                .Where(named => named.TryGetProperty("name", out var name) && name.GetString() == "default")
                .Select(named => named.GetProperty("template").GetString())
                .FirstOrDefault(),
            _ => null,
        };
}

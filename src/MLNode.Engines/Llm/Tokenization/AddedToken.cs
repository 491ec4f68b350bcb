using System.Text.Json;

namespace MLNode.Engines.Llm.Tokenization;

/// <summary>
/// An entry of <c>added_tokens</c>: matched in the text before pre-tokenization. <see cref="Normalized"/> tokens are
/// matched in the normalized text, the others in the raw text; <see cref="LStrip"/>/<see cref="RStrip"/> absorb
/// neighbouring whitespace; a <see cref="SingleWord"/> token only matches when no word character touches it.
/// </summary>
public sealed record AddedToken(int Id, string Content, bool Special, bool SingleWord, bool LStrip, bool RStrip, bool Normalized)
{
    public static AddedToken FromJson(JsonElement token) => new(
        token.GetProperty("id").GetInt32(),
        token.GetProperty("content").GetString() ?? throw new InvalidDataException("added token without content"),
        Flag(token, "special", false),
        Flag(token, "single_word", false),
        Flag(token, "lstrip", false),
        Flag(token, "rstrip", false),
        // HF's default: a token is normalized unless it is special.
        Flag(token, "normalized", !Flag(token, "special", false)));

    private static bool Flag(JsonElement token, string name, bool fallback) =>
        token.TryGetProperty(name, out var value) && value.ValueKind is JsonValueKind.True or JsonValueKind.False ? value.GetBoolean() : fallback;
}

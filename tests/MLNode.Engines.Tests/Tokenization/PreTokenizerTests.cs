using System.Text.Json;
using MLNode.Engines.Llm.Tokenization;
using MLNode.Tests;

namespace MLNode.Engines.Tests.Tokenization;

/// <summary>Qwen's pre-tokenizer (from the fixture) on the cases where .NET's UTF-16 regex needs help.</summary>
public sealed class PreTokenizerTests
{
    private static readonly PreTokenizer Qwen = LoadQwen();

    private static PreTokenizer LoadQwen()
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Fixtures.Path("llm", "tokenizer-tiny", "tokenizer.json")));
        return PreTokenizer.FromJson(document.RootElement.GetProperty("pre_tokenizer"));
    }

    [Theory]
    [InlineData("Hello, world!", new[] { "Hello", ",", " world", "!" })]
    [InlineData("  leading\n\n  x", new[] { " ", " leading", "\n\n", " ", " x" })]
    [InlineData(" 123", new[] { " ", "1", "2", "3" })]
    [InlineData("don't I'LL", new[] { "don", "'t", " I", "'LL" })]
    // Letters and digits outside the BMP are one \p{L} / \p{N} code point each, as in HF's code-point regex.
    [InlineData(" hello𝐀world 𠀀x", new[] { " hello𝐀world", " 𠀀x" })]
    [InlineData("𝟏𝟐", new[] { "𝟏", "𝟐" })]
    [InlineData("a🤖🚀b", new[] { "a", "🤖🚀", "b" })]
    public void Splits_like_the_hf_regex(string text, string[] expected)
    {
        Assert.Equal(expected, Qwen.PreTokenize(text));
    }
}

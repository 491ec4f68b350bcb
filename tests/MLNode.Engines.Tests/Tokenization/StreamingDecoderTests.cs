using System.Text;
using MLNode.Engines.Llm.Tokenization;

namespace MLNode.Engines.Tests.Tokenization;

public sealed class StreamingDecoderTests
{
    private static readonly ByteLevelBpeTokenizer Tokenizer = TinyTokenizer.Instance;

    public static TheoryData<string> Texts => new(
        TinyTokenizer.Encodings.GetProperty("cases").EnumerateArray().Select(reference => reference.GetProperty("text").GetString()!)
            .Concat(["👨‍👩‍👧‍👦 🇩🇪 👍🏽 中文字符 𠀀𝐀 e\u0301 Ω≈ç√ ١٢٣", "<|im_start|>assistant\n🤖<|im_end|>"]));

    [Theory]
    [MemberData(nameof(Texts))]
    public void Deltas_add_up_to_the_decoded_text_without_broken_characters(string text)
    {
        var ids = Tokenizer.Encode(text);
        var decoder = new StreamingDecoder(Tokenizer);

        var deltas = ids.Select(decoder.Append).ToList();

        Assert.Equal("", decoder.Flush());
        Assert.Equal(Tokenizer.Decode(ids), string.Concat(deltas));
        Assert.All(deltas, delta => Assert.DoesNotContain('\uFFFD', delta));
    }

    [Fact]
    public void A_character_split_over_tokens_is_emitted_with_its_last_byte()
    {
        var decoder = new StreamingDecoder(Tokenizer);

        var deltas = Encoding.UTF8.GetBytes("🤖").Select(b => decoder.Append(TinyTokenizer.ByteToken(b)));

        Assert.Equal(["", "", "", "🤖"], deltas);
    }

    [Fact]
    public void Ill_formed_bytes_are_emitted_at_once_and_an_unfinished_character_on_flush()
    {
        var decoder = new StreamingDecoder(Tokenizer);

        Assert.Equal("\uFFFD", decoder.Append(TinyTokenizer.ByteToken(0x80)));
        Assert.Equal("", decoder.Append(TinyTokenizer.ByteToken(0xE4)));
        Assert.Equal("", decoder.Append(TinyTokenizer.ByteToken(0xB8)));
        Assert.Equal("中", decoder.Append(TinyTokenizer.ByteToken(0xAD)));
        Assert.Equal("", decoder.Append(TinyTokenizer.ByteToken(0xE4)));
        Assert.Equal("\uFFFD", decoder.Flush());
    }

    [Fact]
    public void Special_tokens_can_be_skipped()
    {
        var ids = Tokenizer.Encode("<|im_start|>assistant\nhi<|im_end|>");
        var decoder = new StreamingDecoder(Tokenizer, skipSpecialTokens: true);

        Assert.Equal("assistant\nhi", decoder.Append(ids) + decoder.Flush());
    }
}

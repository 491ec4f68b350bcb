using System.Text.Json.Nodes;
using MLNode.Engines.Llm.Tokenization;
using MLNode.Engines.Llm.Tokenization.Unicode;

namespace MLNode.Engines.Tests.Tokenization;

public sealed class ByteLevelBpeTokenizerTests
{
    private static readonly ByteLevelBpeTokenizer Tokenizer = TinyTokenizer.Instance;

    public static TheoryData<int> Cases => new(Enumerable.Range(0, TinyTokenizer.Encodings.GetProperty("cases").GetArrayLength()));

    public static TheoryData<int> TokenizersJsCases => new(Enumerable.Range(0, TinyTokenizer.TokenizersJsEncodings.GetProperty("cases").GetArrayLength()));

    /// <summary>Strings the fixture does not cover; each must come back as its NFC form.</summary>
    public static TheoryData<string> TrickyTexts => new(
        "family 👨‍👩‍👧‍👦, flags 🇩🇪🇯🇵, skin tone 👍🏽, variation ❤️",
        "漢字かなカナ한국어 混合 text",
        "combining: a\u0301 e\u0300\u0323 o\u0308\u0304 q\u0307 Z\u0335",
        "NFD input: Cafe\u0301 nai\u0308ve A\u030A",
        "whitespace \t\t  \n\n\n  \r\n \u00A0\u3000\u2028 end   ",
        "numbers 0 00 007 1,234,567.89 -3e10 ١٢٣ ½ Ⅻ",
        "supplementary letters 𝐀𝐁𝐂 𠀀𠀁 and digits 𝟏𝟐𝟑",
        "العربية हिन्दी ไทย Ελληνικά Кириллица",
        "it's THEY'RE we'Ve I'd 'S 'll",
        "<|im_start|><|im_end|><|endoftext|><|im_start|",
        "");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Fixture_cases_encode_to_the_reference_ids(int index)
    {
        var reference = TinyTokenizer.Encodings.GetProperty("cases")[index];
        var ids = reference.GetProperty("ids").EnumerateArray().Select(id => id.GetInt32()).ToArray();

        Assert.Equal(ids, Tokenizer.Encode(reference.GetProperty("text").GetString()!));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Fixture_cases_decode_to_the_reference_text(int index)
    {
        var reference = TinyTokenizer.Encodings.GetProperty("cases")[index];
        var ids = reference.GetProperty("ids").EnumerateArray().Select(id => id.GetInt32());

        Assert.Equal(reference.GetProperty("decoded").GetString(), Tokenizer.Decode(ids));
    }

    [Theory]
    [MemberData(nameof(TokenizersJsCases))]
    public void Encodes_like_tokenizers_js_and_decodes_to_the_nfc_text(int index)
    {
        var reference = TinyTokenizer.TokenizersJsEncodings.GetProperty("cases")[index];
        var text = reference.GetProperty("text").GetString()!;
        var ids = reference.GetProperty("ids").EnumerateArray().Select(id => id.GetInt32()).ToArray();

        Assert.Equal(ids, Tokenizer.Encode(text));
        Assert.Equal(CanonicalNormalizer.Compose(text), Tokenizer.Decode(ids));
    }

    [Fact]
    public void Vocabulary_size_and_special_tokens_come_from_the_files()
    {
        Assert.Equal(TinyTokenizer.Encodings.GetProperty("vocab_size").GetInt32(), Tokenizer.VocabSize);
        Assert.Equal(511, Tokenizer.EosTokenId);
        Assert.Equal(509, Tokenizer.PadTokenId);
        Assert.Null(Tokenizer.BosTokenId);
        Assert.Equal("<|im_end|>", Tokenizer.Config.EosToken);
        Assert.StartsWith("{% for message in messages %}", Tokenizer.Config.ChatTemplate);
        Assert.Equal(510, Tokenizer.TokenToId("<|im_start|>"));
        Assert.Equal("<|endoftext|>", Tokenizer.IdToToken(509));
        Assert.True(Tokenizer.IsSpecial(511));
        Assert.False(Tokenizer.IsSpecial(0));
        Assert.Equal("Ġ", Tokenizer.IdToToken(Tokenizer.TokenToId("Ġ")!.Value));
        Assert.Null(Tokenizer.TokenToId("not a token"));
        Assert.Null(Tokenizer.IdToToken(512));
        Assert.Null(Tokenizer.IdToToken(-1));
    }

    [Fact]
    public void Special_tokens_are_text_when_not_allowed()
    {
        const string text = "<|im_start|>user\nhi<|im_end|>";
        var ids = Tokenizer.Encode(text, allowSpecial: false);

        Assert.DoesNotContain(ids, Tokenizer.IsSpecial);
        Assert.Equal(text, Tokenizer.Decode(ids));
        Assert.Equal([510, .. Tokenizer.Encode("user\nhi"), 511], Tokenizer.Encode(text));
    }

    [Fact]
    public void Decoding_can_skip_special_tokens_and_ignores_unknown_ids()
    {
        var ids = Tokenizer.Encode("<|im_start|>user\nhi<|im_end|><|endoftext|>");

        Assert.Equal("user\nhi", Tokenizer.Decode(ids, skipSpecialTokens: true));
        Assert.Equal("hi", Tokenizer.Decode([-5, .. Tokenizer.Encode("hi"), 100_000]));
    }

    [Theory]
    [MemberData(nameof(TrickyTexts))]
    public void Tricky_text_round_trips_as_its_nfc_form(string text)
    {
        var ids = Tokenizer.Encode(text);

        Assert.Equal(CanonicalNormalizer.Compose(text), Tokenizer.Decode(ids));
        Assert.All(ids, id => Assert.InRange(id, 0, Tokenizer.VocabSize - 1));
    }

    [Fact]
    public void Nfd_and_nfc_input_encode_alike()
    {
        Assert.Equal(Tokenizer.Encode("\u00DCn\u00EFc\u00F6d\u00E9 caf\u00E9 \u00C5\u1EA1\u0300"),
            Tokenizer.Encode("U\u0308ni\u0308co\u0308de\u0301 cafe\u0301 \u212Ba\u0300\u0323"));
    }

    [Fact]
    public void Lone_surrogates_encode_as_the_replacement_character()
    {
        Assert.Equal(Tokenizer.Encode("a\uFFFDb"), Tokenizer.Encode("a\uD800b"));
    }

    [Theory]
    [InlineData(new byte[] { 0xE4, 0xB8 }, "\uFFFD")]                 // a character cut short is one U+FFFD
    [InlineData(new byte[] { 0xF0, 0x9F, 0x98, 0x41 }, "\uFFFDA")]
    [InlineData(new byte[] { 0xC0, 0x80 }, "\uFFFD\uFFFD")]           // overlong: each byte is ill-formed on its own
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 }, "\uFFFD\uFFFD\uFFFD")] // an encoded surrogate
    [InlineData(new byte[] { 0x80, 0xE2, 0x82, 0xAC }, "\uFFFD€")]
    public void Ill_formed_utf8_decodes_to_replacement_characters_as_hf_does(byte[] bytes, string expected)
    {
        Assert.Equal(expected, Tokenizer.Decode(bytes.Select(TinyTokenizer.ByteToken)));
    }

    [Fact]
    public void Merges_written_as_pairs_load_like_merges_written_as_strings()
    {
        var pairs = TinyTokenizer.Edited(json =>
        {
            var merges = json["model"]!["merges"]!.AsArray();
            var asPairs = merges.Select(merge => merge is JsonArray ? merge.DeepClone() : new JsonArray(merge!.GetValue<string>().Split(' ').Select(part => (JsonNode)part!).ToArray()));
            json["model"]!["merges"] = new JsonArray(asPairs.ToArray());
        });
        var strings = TinyTokenizer.Edited(json =>
        {
            var merges = json["model"]!["merges"]!.AsArray();
            json["model"]!["merges"] = new JsonArray(merges.Select(merge => (JsonNode)(merge is JsonArray pair ? $"{pair[0]} {pair[1]}" : merge!.GetValue<string>())!).ToArray());
        });
        const string text = "def f(x):\n    return x ** 2  # comment, don't won't";

        Assert.Equal(Tokenizer.Encode(text), pairs.Encode(text));
        Assert.Equal(Tokenizer.Encode(text), strings.Encode(text));
    }

    [Fact]
    public void Long_inputs_encode_and_round_trip()
    {
        var oneLongPreToken = new string('a', 50_000);
        var manyPreTokens = string.Concat(Enumerable.Repeat("The quick brown fox, 12 jumps! 中文 🤖\n", 5_000));

        Assert.Equal(oneLongPreToken, Tokenizer.Decode(Tokenizer.Encode(oneLongPreToken)));
        Assert.Equal(manyPreTokens, Tokenizer.Decode(Tokenizer.Encode(manyPreTokens)));
    }
}

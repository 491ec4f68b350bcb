using System.Text.Json.Nodes;
using MLNode.Engines.Llm.Tokenization;

namespace MLNode.Engines.Tests.Tokenization;

/// <summary>The added-token flags, on the fixture tokenizer with a few non-special tokens added.</summary>
public sealed class AddedTokenTests
{
    private const int Mask = 512, Right = 513, Word = 514, Cafe = 515, DoubleMask = 516;

    private static readonly ByteLevelBpeTokenizer Plain = TinyTokenizer.Instance;

    private static readonly ByteLevelBpeTokenizer Tokenizer = TinyTokenizer.Edited(json =>
    {
        var added = json["added_tokens"]!.AsArray();
        added.Add(Token(Mask, "<mask>", lstrip: true));
        added.Add(Token(Right, "[R]", rstrip: true));
        added.Add(Token(Word, "word", singleWord: true));
        added.Add(Token(Cafe, "cafe\u0301", normalized: true));
        added.Add(Token(DoubleMask, "<mask><mask>"));
    });

    private static JsonObject Token(int id, string content, bool lstrip = false, bool rstrip = false, bool singleWord = false, bool normalized = false) => new()
    {
        ["id"] = id, ["content"] = content, ["single_word"] = singleWord, ["lstrip"] = lstrip, ["rstrip"] = rstrip,
        ["normalized"] = normalized, ["special"] = false,
    };

    [Fact]
    public void Lstrip_takes_the_whitespace_before_the_token()
    {
        Assert.Equal([.. Plain.Encode("a"), Mask, .. Plain.Encode(" b")], Tokenizer.Encode("a  <mask> b"));
    }

    [Fact]
    public void Rstrip_takes_the_whitespace_after_the_token()
    {
        Assert.Equal([.. Plain.Encode("x "), Right, .. Plain.Encode("y")], Tokenizer.Encode("x [R] \t y"));
    }

    [Fact]
    public void A_single_word_token_matches_only_outside_words()
    {
        Assert.Equal([.. Plain.Encode("a "), Word, .. Plain.Encode(" here")], Tokenizer.Encode("a word here"));
        Assert.Equal(Plain.Encode("password words"), Tokenizer.Encode("password words"));
    }

    [Fact]
    public void A_normalized_token_matches_the_normalized_text()
    {
        Assert.Equal([.. Plain.Encode("I like "), Cafe], Tokenizer.Encode("I like cafe\u0301"));
        Assert.Equal([.. Plain.Encode("I like "), Cafe], Tokenizer.Encode("I like caf\u00E9"));
    }

    [Fact]
    public void The_longest_token_at_the_leftmost_position_wins()
    {
        Assert.Equal([DoubleMask, Mask], Tokenizer.Encode("<mask><mask><mask>"));
    }

    [Fact]
    public void Non_special_added_tokens_stay_matched_when_specials_are_not_allowed()
    {
        Assert.Equal([.. Plain.Encode("<|im_end|>", allowSpecial: false), Mask], Tokenizer.Encode("<|im_end|><mask>", allowSpecial: false));
        Assert.Equal("<|im_end|><mask>", Tokenizer.Decode(Tokenizer.Encode("<|im_end|><mask>", allowSpecial: false)));
    }
}

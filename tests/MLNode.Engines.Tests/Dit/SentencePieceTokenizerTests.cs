using System.Text.Json;
using MLNode.Engines.Dit.Text;
using MLNode.Tests;

namespace MLNode.Engines.Tests.Dit;

/// <summary>
/// The SentencePiece unigram tokenizer against the sentencepiece library's encodings of the tiny umT5 vocabulary
/// (fixtures wan/umt5-tokenizer-tiny) and the ids the Wan pipeline fixture tokenised its prompts to. Token ids,
/// pieces and text must match exactly.
/// </summary>
public sealed class SentencePieceTokenizerTests
{
    private static readonly SentencePieceTokenizer Tiny = SentencePieceTokenizer.Load(Fixtures.Path("wan", "umt5-tokenizer-tiny", "spiece.model"));
    private static readonly JsonElement Encodings = ReadJson(Fixtures.Path("wan", "umt5-tokenizer-tiny", "encodings.json"));

    public static TheoryData<int> Cases => new(Enumerable.Range(0, Encodings.GetProperty("cases").GetArrayLength()));

    [Theory]
    [MemberData(nameof(Cases))]
    public void Encodes_to_the_reference_ids_and_pieces(int index)
    {
        var reference = Encodings.GetProperty("cases")[index];
        var ids = Tiny.Encode(reference.GetProperty("text").GetString()!);

        Assert.Equal(Ints(reference.GetProperty("ids_without_eos")), ids);
        Assert.Equal(reference.GetProperty("pieces").EnumerateArray().Select(p => p.GetString()!), ids.Select(Tiny.IdToPiece));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Wan_prompt_ids_end_with_eos(int index)
    {
        var reference = Encodings.GetProperty("cases")[index];

        Assert.Equal(Ints(reference.GetProperty("ids_with_eos")), WanPromptTokens.Ids(Tiny, reference.GetProperty("text").GetString()!));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decodes_to_the_reference_text(int index)
    {
        var reference = Encodings.GetProperty("cases")[index];

        Assert.Equal(reference.GetProperty("decoded").GetString(), Tiny.Decode(Ints(reference.GetProperty("ids_with_eos"))));
    }

    [Fact]
    public void Pipeline_prompts_tokenise_as_the_reference_run()
    {
        var tokenizer = SentencePieceTokenizer.Load(Fixtures.Path("wan", "wan-tiny", "tokenizer", "spiece.model"));
        var pipeline = ReadJson(Fixtures.Path("wan", "wan-tiny", "pipeline_reference.json"));
        var job = pipeline.GetProperty("job");

        Assert.Equal(Ints(pipeline.GetProperty("prompt_ids")), WanPromptTokens.Ids(tokenizer, job.GetProperty("prompt").GetString()!));
        Assert.Equal(Ints(pipeline.GetProperty("negative_ids")), WanPromptTokens.Ids(tokenizer, job.GetProperty("negative_prompt").GetString()!));
    }

    [Theory]
    // nmt_nfkc through the model's own compiled rules: compatibility forms fold, combining marks compose,
    // control characters vanish and odd spaces become ordinary ones.
    [InlineData("ＡＢＣ１２３ ﬁ Ⅻ", "ABC123 fi XII")]
    [InlineData("cafe\u0301", "café")]
    [InlineData("a\u0001b\u007F", "ab")]
    [InlineData("a\u00A0\u3000b", "a b")]
    public void Normalisation_follows_the_compiled_nmt_nfkc_rules(string text, string equivalent) =>
        Assert.Equal(Tiny.Encode(equivalent), Tiny.Encode(text));

    [Fact]
    public void Prompts_past_the_text_length_keep_eos_last()
    {
        var ids = WanPromptTokens.Ids(Tiny, string.Concat(Enumerable.Repeat("a cat ", 400)), maxLength: 512);

        Assert.Equal(512, ids.Length);
        Assert.Equal(Tiny.EosId, ids[^1]);
        Assert.Equal(Tiny.Encode(string.Concat(Enumerable.Repeat("a cat ", 400)))[..511], ids[..511]);
    }

    [Fact]
    public void User_defined_symbols_stay_whole_and_unknown_runs_merge_without_byte_fallback()
    {
        // A hand-built model (no charsmap, no byte pieces): 0 <unk>, 1 </s>, 2 ▁, 3 a, 4 b, 5 ab, 6 <sep> (user-defined).
        var model = SentencePieceModelProto.Parse(ModelProto(
            ("<unk>", 0f, SentencePieceType.Unknown), ("</s>", 0f, SentencePieceType.Control), ("▁", -1f, SentencePieceType.Normal),
            ("a", -2f, SentencePieceType.Normal), ("b", -2f, SentencePieceType.Normal), ("ab", -1.5f, SentencePieceType.Normal),
            ("<sep>", 0f, SentencePieceType.UserDefined)), "hand-built");
        var tokenizer = new SentencePieceTokenizer(model);

        var ids = tokenizer.Encode("ab<sep>cc");

        Assert.Equal([2, 5, 6, 0], ids);
        Assert.Equal("ab<sep> \u2047 ", tokenizer.Decode(ids));
        Assert.Equal([2, 3, 2, 4], tokenizer.Encode(" a  b "));
    }

    /// <summary>A ModelProto holding only pieces (field 1: piece 1, score 2, type 3); eos_id is set to piece 1.</summary>
    private static byte[] ModelProto(params (string Piece, float Score, SentencePieceType Type)[] pieces)
    {
        var model = new List<byte>();
        foreach (var (piece, score, type) in pieces)
        {
            var entry = new List<byte>();
            LengthDelimited(entry, 1, System.Text.Encoding.UTF8.GetBytes(piece));
            entry.Add((2 << 3) | 5);
            entry.AddRange(BitConverter.GetBytes(score));
            entry.AddRange([(3 << 3) | 0, (byte)type]);
            LengthDelimited(model, 1, [.. entry]);
        }
        LengthDelimited(model, 2, [(42 << 3) & 0x7F | 0x80, (42 << 3) >> 7, 1]);
        return [.. model];

        static void LengthDelimited(List<byte> into, int field, byte[] payload)
        {
            into.Add((byte)((field << 3) | 2));
            into.Add((byte)payload.Length);
            into.AddRange(payload);
        }
    }

    private static int[] Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32()).ToArray();

    private static JsonElement ReadJson(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        return document.RootElement.Clone();
    }
}

using System.Text.Json.Nodes;
using MLNode.Engines.Asr.Whisper;
using MLNode.Tests;

namespace MLNode.Engines.Tests.Asr;

/// <summary>Whisper's vocabulary from openai's rank file (whisper/assets/multilingual.tiktoken) and from a HF tokenizer.json.</summary>
public sealed class WhisperTokenizerTests
{
    private static readonly Lazy<WhisperTokenizer> Multilingual = new(() =>
        WhisperTokenizer.FromTiktoken(Fixtures.Path("whisper", "assets", "multilingual.tiktoken"), TinyWhisper.Config));

    /// <summary>The ids of large-v3's control tokens (spec §1.4), found by name in the 51 866-token vocabulary.</summary>
    [Fact]
    public void Control_tokens_of_a_v3_vocabulary_have_the_released_ids()
    {
        var special = Multilingual.Value.Special;
        Assert.Equal(50257, special.EndOfText);
        Assert.Equal(50258, special.StartOfTranscript);
        Assert.Equal(100, special.Languages.Count);
        Assert.Equal(50259, special.LanguageToken("en"));
        Assert.Equal(50260, special.LanguageToken("zh"));
        Assert.Equal(50358, special.LanguageToken("yue"));
        Assert.Equal("gu", special.LanguageCode(50333));
        Assert.Equal(50359, special.Translate);
        Assert.Equal(50360, special.Transcribe);
        Assert.Equal(50362, special.StartOfPrevious);
        Assert.Equal(50363, special.NoSpeech);
        Assert.Equal(50364, special.NoTimestamps);
        Assert.Equal(50365, special.TimestampBegin);
        Assert.Equal(51865, Multilingual.Value.Bpe.TokenToId("<|30.00|>"));
        Assert.True(special.IsMultilingual);
    }

    /// <summary>
    /// Expected ids from tiktoken's rule (merge the adjacent pair whose concatenation has the lowest rank until none
    /// has one), run in Python over the same rank file for each GPT-2 pre-token.
    /// </summary>
    [Theory]
    [InlineData("Hello world, this is a transcription test.", new[] { 15947, 1002, 11, 341, 307, 257, 35288, 1500, 13 })]
    [InlineData("Grüße aus München", new[] { 20038, 774, 11451, 3437, 35840, 2470 })]
    [InlineData("It's 2024", new[] { 3522, 311, 45237 })]
    public void Text_encodes_as_tiktoken_does(string text, int[] expected)
    {
        var tokenizer = Multilingual.Value;
        Assert.Equal(expected, tokenizer.EncodeText(text));
        Assert.Equal(text, tokenizer.Decode(expected));
    }

    [Fact]
    public void Control_tokens_written_in_text_stay_text_and_decoding_drops_them()
    {
        var tokenizer = Multilingual.Value;
        var special = tokenizer.Special;
        var ids = tokenizer.EncodeText("<|endoftext|> hi");
        Assert.DoesNotContain(special.EndOfText, ids);
        Assert.Equal("<|endoftext|> hi", tokenizer.Decode(ids));
        Assert.Equal(" hi", tokenizer.Decode([special.StartOfTranscript, special.LanguageToken("en")!.Value, special.TimestampBegin!.Value, .. tokenizer.EncodeText(" hi"), special.EndOfText]));
    }

    [Fact]
    public void A_hf_tokenizer_json_with_whispers_template_post_processor_loads_with_the_same_ids()
    {
        var tiktoken = Multilingual.Value;
        var folder = Directory.CreateTempSubdirectory("mlnode-whisper-tokenizer-").FullName;
        try
        {
            var ranks = TiktokenVocabulary.ReadRanks(Fixtures.Path("whisper", "assets", "multilingual.tiktoken"));
            var json = TiktokenVocabulary.TokenizerJson(ranks, WhisperTokenizer.OpenAiSpecialTokens(100));
            // What HF's WhisperTokenizerFast writes: its prefix tokens as a template (Encode never applies it).
            json["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<|startoftranscript|>", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
            };
            File.WriteAllText(Path.Combine(folder, "tokenizer.json"), json.ToJsonString());
            var hf = WhisperTokenizer.FromDirectory(folder, TinyWhisper.Config);
            Assert.Equal(tiktoken.Special with { Languages = [] }, hf.Special with { Languages = [] });
            Assert.Equal(tiktoken.Special.Languages, hf.Special.Languages);
            Assert.Equal(tiktoken.EncodeText("Grüße aus München"), hf.EncodeText("Grüße aus München"));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void A_rank_file_that_leaves_no_room_for_the_control_tokens_is_refused()
    {
        var config = WhisperConfig.Parse(
            File.ReadAllText(Path.Combine(TinyWhisper.Folder, "config.json")).Replace("\"vocab_size\": 51866", "\"vocab_size\": 51000"), "config.json", null, "generation_config.json");
        var e = Assert.Throws<InvalidDataException>(() => WhisperTokenizer.FromTiktoken(Fixtures.Path("whisper", "assets", "multilingual.tiktoken"), config));
        Assert.Contains("language tokens", e.Message);
    }
}

using MLNode.Engines.Asr.Qwen3Asr;

namespace MLNode.Engines.Tests.Asr;

/// <summary>The prompt and output format of Qwen3-ASR (spec §2.4), over a toy vocabulary whose pieces are visible.</summary>
public sealed class Qwen3AsrChatFormatTests
{
    private static readonly Qwen3AsrChatFormat.SpecialTokens Ids = new(AudioStart: 91, AudioPad: 90, AudioEnd: 92, AsrText: 93, EndOfTurn: 94);

    // Each template piece and word is one id; what the encoder was asked, with its allowSpecial flag, is recorded.
    private static readonly Dictionary<string, int> Vocabulary = new()
    {
        [Qwen3AsrChatFormat.SystemTurnOpen] = 1, [Qwen3AsrChatFormat.TurnClose] = 2, [Qwen3AsrChatFormat.UserTurn] = 3,
        [Qwen3AsrChatFormat.AssistantTurn] = 4, ["language German<asr_text>"] = 5, ["Names: Anna"] = 6,
        ["language"] = 10, [" English"] = 11, [" None"] = 12, [" Klingon"] = 13, [" hello"] = 20, [" world"] = 21,
    };

    private static readonly List<(string Text, bool AllowSpecial)> Asked = [];

    private static Qwen3AsrChatFormat Format() => new(Ids,
        (text, allowSpecial) =>
        {
            lock (Asked) Asked.Add((text, allowSpecial));
            return [Vocabulary[text]];
        },
        ids => string.Concat(ids.Select(id => Vocabulary.FirstOrDefault(e => e.Value == id).Key ?? "")));

    [Fact]
    public void Plain_prompt_is_the_user_turn_with_the_audio_then_the_assistant_turn()
    {
        Assert.Equal([3, 91, 90, 90, 90, 92, 4], Format().Build(context: "  ", languageName: null, audioTokens: 3));
    }

    [Fact]
    public void Context_goes_in_a_system_turn_as_plain_text_and_a_forced_language_closes_the_prompt()
    {
        var format = Format();
        Assert.Equal([1, 6, 2, 3, 91, 90, 92, 4, 5], format.Build(context: " Names: Anna\n", languageName: "German", audioTokens: 1));
        // The user's context may not open or close turns: it is the one piece tokenized without special tokens.
        lock (Asked) Assert.Contains(("Names: Anna", false), Asked);
    }

    [Fact]
    public void Output_is_split_at_the_last_asr_text_marker_and_the_language_mapped_to_its_code()
    {
        var parsed = Format().Parse([10, 11, 93, 20, 21], forcedLanguage: null);
        Assert.Equal(("en", "hello world", false), (parsed.Language, parsed.Text, parsed.NoSpeech));
        Assert.Equal([20, 21], parsed.TextTokens);
    }

    [Fact]
    public void Language_none_means_no_speech()
    {
        var parsed = Format().Parse([10, 12, 93], forcedLanguage: null);
        Assert.Equal((null, "", true), (parsed.Language, parsed.Text, parsed.NoSpeech));
    }

    [Fact]
    public void A_language_the_model_does_not_know_stays_unknown()
    {
        var parsed = Format().Parse([10, 13, 93, 20], forcedLanguage: null);
        Assert.Equal((null, "hello", false), (parsed.Language, parsed.Text, parsed.NoSpeech));
    }

    [Fact]
    public void With_a_forced_language_the_whole_output_is_text()
    {
        var parsed = Format().Parse([20, 21], forcedLanguage: "de");
        Assert.Equal(("de", "hello world"), (parsed.Language, parsed.Text));
    }

    [Fact]
    public void Decoding_for_streams_never_shows_the_language_header()
    {
        var format = Format();
        // Token by token, the header yields nothing and the transcript grows after the marker.
        Assert.Equal(["", "", "", " hello", " hello world"], new[] { 1, 2, 3, 4, 5 }.Select(n => format.Decode(new[] { 10, 11, 93, 20, 21 }[..n])));
        // A forced language's output has no header: its text shows at once.
        Assert.Equal(" hello", format.Decode([20]));
    }

    [Fact]
    public void Languages_map_between_iso_codes_and_the_names_the_model_writes()
    {
        Assert.Equal(31, Qwen3AsrLanguages.Codes.Count);
        Assert.Equal(Qwen3AsrLanguages.Codes.Count, Qwen3AsrLanguages.Codes.Distinct().Count());
        foreach (var code in Qwen3AsrLanguages.Codes)
            Assert.Equal(code, Qwen3AsrLanguages.CodeOf(Qwen3AsrLanguages.NameOf(code)!));
        Assert.Equal("Cantonese", Qwen3AsrLanguages.NameOf("yue"));
        Assert.Equal("en", Qwen3AsrLanguages.CodeOf("english"));
        Assert.Null(Qwen3AsrLanguages.NameOf("xx"));
    }
}

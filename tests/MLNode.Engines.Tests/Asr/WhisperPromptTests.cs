using MLNode.Engines.Asr;
using MLNode.Engines.Asr.Whisper;

namespace MLNode.Engines.Tests.Asr;

/// <summary>The decoder prompt (openai's <c>_get_initial_tokens</c>) and the timestamp segments of a decoded window, model-free.</summary>
public sealed class WhisperPromptTests
{
    private static WhisperTokenizer Tokenizer => TinyWhisper.Tokenizer;

    [Fact]
    public void Transcription_prompt_without_context_is_sot_language_task_notimestamps()
    {
        var prompt = WhisperPrompt.Build(Tokenizer, null, "en", SpeechTask.Transcribe, timestamps: false, contextTokens: 223);
        // The fixture's own prompt_ids (reference_outputs.json).
        Assert.Equal([50258, 50259, 50360, 50364], prompt.Tokens);
        Assert.Equal(0, prompt.StartOfTranscript);
    }

    [Fact]
    public void Translation_with_timestamps_takes_the_translate_token_and_no_notimestamps()
    {
        var prompt = WhisperPrompt.Build(Tokenizer, "  ", "de", SpeechTask.Translate, timestamps: true, contextTokens: 223);
        Assert.Equal([50258, 50261, 50359], prompt.Tokens);
    }

    [Fact]
    public void Context_follows_startofprev_with_a_leading_space_and_keeps_the_last_tokens()
    {
        var text = Tokenizer.EncodeText(" Hello world, this is a transcription test.");
        var prompt = WhisperPrompt.Build(Tokenizer, "Hello world, this is a transcription test. ", "en", SpeechTask.Transcribe, timestamps: false, contextTokens: 4);
        Assert.Equal([50362, .. text[^4..], 50258, 50259, 50360, 50364], prompt.Tokens);
        Assert.Equal(5, prompt.StartOfTranscript);
    }

    [Fact]
    public void Unknown_language_is_refused()
    {
        var e = Assert.Throws<SpeechJobException>(() => WhisperPrompt.Build(Tokenizer, null, "xx", SpeechTask.Transcribe, false, 223));
        Assert.Contains("'xx'", e.Message);
        Assert.Equal("language", e.Field);
    }

    private const int T = 50365; // <|0.00|>

    private static readonly AudioWindow Second = new(480_000, 960_000);

    private static string Decode(IEnumerable<int> ids) => Tokenizer.Decode(ids);

    [Fact]
    public void Pairs_of_timestamps_cut_segments_offset_by_the_window_start()
    {
        var (a, b) = (Tokenizer.EncodeText(" one"), Tokenizer.EncodeText(" two"));
        int[] tokens = [T, .. a, T + 100, T + 100, .. b, T + 250];
        var segments = TimestampSegments.Split(tokens, T, Second, Decode);
        Assert.Equal(2, segments.Count);
        Assert.Equal((30.0, 32.0, " one"), (segments[0].Start, segments[0].End, segments[0].Text));
        Assert.Equal((32.0, 35.0, " two"), (segments[1].Start, segments[1].End, segments[1].Text));
        Assert.Equal([T, .. a, T + 100], segments[0].Tokens);
    }

    [Fact]
    public void Text_left_open_after_the_last_pair_runs_to_the_window_end()
    {
        var (a, b) = (Tokenizer.EncodeText(" one"), Tokenizer.EncodeText(" two"));
        var segments = TimestampSegments.Split([T, .. a, T + 100, T + 100, .. b], T, Second, Decode);
        Assert.Equal((32.0, 60.0, " two"), (segments[1].Start, segments[1].End, segments[1].Text));
    }

    [Fact]
    public void Without_a_pair_one_segment_spans_the_window_up_to_its_last_timestamp()
    {
        var a = Tokenizer.EncodeText(" alone");
        var closed = Assert.Single(TimestampSegments.Split([T + 5, .. a, T + 60], T, Second, Decode));
        Assert.Equal((30.0, 31.2), (closed.Start, closed.End));
        var open = Assert.Single(TimestampSegments.Split([T, .. a], T, new AudioWindow(0, 80_000), Decode));
        Assert.Equal((0.0, 5.0), (open.Start, open.End));
    }

    [Fact]
    public void Times_past_the_window_end_are_clamped_and_empty_segments_dropped()
    {
        var a = Tokenizer.EncodeText(" late");
        var segments = TimestampSegments.Split([T, T + 10, T + 10, .. a, T + 400], T, new AudioWindow(0, 80_000), Decode);
        var segment = Assert.Single(segments);
        Assert.Equal((0.2, 5.0), (segment.Start, segment.End));
    }
}

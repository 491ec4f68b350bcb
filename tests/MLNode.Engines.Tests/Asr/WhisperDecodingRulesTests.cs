using MLNode.Engines.Asr;
using MLNode.Engines.Asr.Whisper;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Asr;

/// <summary>
/// The decoding rules without a model, on a toy vocabulary laid out like Whisper's: text 0–9, end of text 10,
/// control tokens 11–13 (start of transcript, transcribe, no timestamps), timestamps 14–23 (0.00 … 0.18 s).
/// </summary>
public sealed class WhisperDecodingRulesTests
{
    private const int Eot = 10, Sot = 11, Transcribe = 12, NoTimestamps = 13, T0 = 14, Vocabulary = 24;

    private static readonly TimestampRules Rules = new(Eot, T0, Vocabulary, maxInitialTimestampIndex: 2);

    [Fact]
    public void First_token_is_a_timestamp_no_later_than_the_initial_limit()
    {
        Assert.Equal(new TimestampConstraint(TextBelow: T0, TimestampFloor: T0, TimestampCeiling: T0 + 3), Rules.Next([]));
        Assert.Equal(Vocabulary, new TimestampRules(Eot, T0, Vocabulary, null).Next([]).TimestampCeiling);
    }

    [Fact]
    public void After_the_opening_timestamp_comes_text_or_the_end()
    {
        var c = Rules.Next([T0 + 1]);
        Assert.Equal(0, c.TextBelow);
        Assert.Equal(T0, c.TimestampCeiling);
    }

    [Fact]
    public void After_text_timestamps_must_move_past_the_last_one()
    {
        var c = Rules.Next([T0 + 1, 3, 4]);
        Assert.Equal(new TimestampConstraint(0, T0 + 2, Vocabulary), c);
    }

    [Fact]
    public void A_closing_timestamp_is_followed_by_a_timestamp_or_the_end_and_may_be_repeated()
    {
        var c = Rules.Next([T0, 3, T0 + 5]);
        Assert.Equal(Eot, c.TextBelow);
        Assert.Equal(T0 + 5, c.TimestampFloor);
        Assert.Equal(Vocabulary, c.TimestampCeiling);
    }

    [Fact]
    public void After_a_pair_comes_text_or_the_end_and_later_timestamps_move_on()
    {
        var pair = Rules.Next([T0, 3, T0 + 5, T0 + 5]);
        Assert.Equal(new TimestampConstraint(0, T0 + 6, T0), pair);
        Assert.Equal(new TimestampConstraint(0, T0 + 6, Vocabulary), Rules.Next([T0, 3, T0 + 5, T0 + 5, 7]));
    }

    [Fact]
    public void Without_timestamps_the_checkpoint_lists_mask_every_step_and_the_first()
    {
        using var scope = NewDisposeScope();
        using var rules = new WhisperLogitRules(Config(suppress: [2, Sot], beginSuppress: [1, Eot]), Special(), timestamps: false, CPU);
        var logits = arange(Vocabulary, ScalarType.Float32).repeat(2, 1);
        var masked = rules.Apply(logits, [[], [5]]);
        Assert.Equal(Masked(1, 2, Eot, Sot), MaskedIds(masked[0]));
        Assert.Equal(Masked(2, Sot), MaskedIds(masked[1]));
        Assert.Equal(1f, logits[0, 1].item<float>()); // the model's logits are untouched
    }

    [Fact]
    public void Timestamp_mode_masks_no_timestamps_and_applies_the_state_machine_per_window()
    {
        using var scope = NewDisposeScope();
        using var rules = new WhisperLogitRules(Config(suppress: [], beginSuppress: [], maxInitial: 2), Special(), timestamps: true, CPU);
        // Text (and control tokens) far likelier than timestamps, so that no timestamp is forced by likelihood.
        var logits = cat([full(3, T0, 5.0f), zeros(3, Vocabulary - T0)], 1);
        var masked = rules.Apply(logits, [[], [T0, 3, T0 + 5], [T0, 3]]);
        Assert.Equal(Masked([.. Enumerable.Range(0, T0), .. Enumerable.Range(T0 + 3, Vocabulary - T0 - 3)]), MaskedIds(masked[0]));
        Assert.Equal(Masked([.. Enumerable.Range(0, Eot), NoTimestamps, .. Enumerable.Range(T0, 5)]), MaskedIds(masked[1]));
        Assert.Equal(Masked(NoTimestamps, T0), MaskedIds(masked[2]));
    }

    [Fact]
    public void Timestamps_likelier_together_than_the_best_text_token_force_a_timestamp()
    {
        using var scope = NewDisposeScope();
        using var rules = new WhisperLogitRules(Config(suppress: [], beginSuppress: []), Special(), timestamps: true, CPU);
        // Text token 3 is the single best token, but the ten timestamps together outweigh it: e^0·10 > e^2.
        var logits = zeros(2, Vocabulary);
        logits[0, 3] = tensor(2.0f);
        logits[1, 3] = tensor(2.5f); // e^2.5 ≈ 12.2 > 10: text may stay
        var masked = rules.Apply(logits, [[T0, 5], [T0, 5]]);
        Assert.Equal(Masked([.. Enumerable.Range(0, T0), T0]), MaskedIds(masked[0]));
        Assert.Equal(Masked(NoTimestamps, T0), MaskedIds(masked[1]));
    }

    [Fact]
    public void Ladder_steps_by_0_2_to_1()
    {
        Assert.Equal([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], TemperatureFallback.Ladder(0));
        Assert.Equal([0.5, 0.7, 0.9], TemperatureFallback.Ladder(0.5));
        Assert.Equal([1.3], TemperatureFallback.Ladder(1.3));
    }

    /// <summary>Values from Python's zlib at its default level, which openai uses; .NET's zlib may pick other blocks, hence the tolerance.</summary>
    [Theory]
    [InlineData("hello world", 0.5789473684210527)]
    [InlineData("the the the the the the the the the the the the the the", 3.6666666666666665)]
    [InlineData("Grüße aus München, wie geht es dir heute? Mir geht es gut.", 0.9838709677419355)]
    public void Compression_ratio_is_openais(string text, double expected) =>
        Assert.Equal(expected, TextCompression.Ratio(text), 0.15);

    [Fact]
    public void Fallback_on_repetition_or_low_logprob_unless_silent()
    {
        Assert.False(TemperatureFallback.NeedsFallback(-0.5, 1.2, 0.1));
        Assert.True(TemperatureFallback.NeedsFallback(-0.5, 2.5, 0.1));
        Assert.True(TemperatureFallback.NeedsFallback(-1.5, 1.2, 0.1));
        Assert.False(TemperatureFallback.NeedsFallback(-1.5, 1.2, 0.9));
        Assert.True(TemperatureFallback.IsSilence(-1.5, 0.9));
        Assert.False(TemperatureFallback.IsSilence(-0.5, 0.9));
        // Two tokens and the end token: (−1 −2 −3) / 3.
        Assert.Equal(-2.0, TemperatureFallback.AverageLogprob([-1, -2, -3], endedWithEndToken: true));
        Assert.Equal(-2.0, TemperatureFallback.AverageLogprob([-2, -2, -2, -2, -2, -2], endedWithEndToken: false), 0.34);
    }

    private static WhisperSpecialTokens Special() => new(Eot, Sot, [], Transcribe, null, null, null, NoTimestamps, T0);

    private static WhisperConfig Config(int[] suppress, int[] beginSuppress, int? maxInitial = null) => WhisperConfig.Parse(
        $$"""
        {"model_type": "whisper", "d_model": 8, "encoder_layers": 1, "decoder_layers": 1, "encoder_attention_heads": 2,
         "decoder_attention_heads": 2, "encoder_ffn_dim": 16, "decoder_ffn_dim": 16, "num_mel_bins": 4,
         "max_source_positions": 10, "max_target_positions": 16, "vocab_size": {{Vocabulary}},
         "decoder_start_token_id": {{Sot}}, "eos_token_id": {{Eot}}}
        """, "config.json",
        $$"""{"suppress_tokens": [{{string.Join(',', suppress)}}], "begin_suppress_tokens": [{{string.Join(',', beginSuppress)}}]{{(maxInitial is { } m ? $", \"max_initial_timestamp_index\": {m}" : "")}}}""",
        "generation_config.json");

    private static int[] Masked(params int[] ids) => [.. ids.Order()];

    private static int[] MaskedIds(Tensor row) =>
        [.. row.data<float>().ToArray().Select((v, i) => (v, i)).Where(e => float.IsNegativeInfinity(e.v)).Select(e => e.i)];
}

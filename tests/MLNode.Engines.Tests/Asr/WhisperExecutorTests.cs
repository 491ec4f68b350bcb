using MLNode.Engines.Asr;
using MLNode.Engines.Asr.Whisper;
using MLNode.Engines.Llm.Sampling;
using MLNode.Protocol.OpenAi;
using LogprobsMode = MLNode.Engines.Llm.Sampling.LogprobsMode;
using MLNode.Protocol.Validation;

namespace MLNode.Engines.Tests.Asr;

/// <summary>
/// Whole jobs through the executor with whisper-tiny-random (float32, CPU) and openai's multilingual vocabulary:
/// audio → log-mel → encoder → batched decoding with the checkpoint's rules → windows, segments and logprobs.
/// </summary>
public sealed class WhisperExecutorTests
{
    // As in WhisperConformanceTests: the fixture's TF32 convolutions leave ≤ 1.5e-4 on these logprobs; the front end adds ~1e-6.
    private const double LogprobTolerance = 5e-4;

    private static readonly SamplingParams Greedy = new(Temperature: 0, TopLogprobs: 5, Mode: LogprobsMode.Raw);

    [Theory]
    [InlineData("speech_en_16k")]
    [InlineData("speech_de_16k")]
    public async Task Greedy_transcription_from_audio_reproduces_the_reference_steps(string clip)
    {
        var executor = TinyWhisper.Executor();
        var audio = TinyWhisper.Audio(clip);
        var job = new SpeechJob(audio, executor.PlanWindows(audio), SpeechTask.Transcribe, "en", null, Greedy, MaxTokensPerWindow: 16);
        var result = await executor.TranscribeAsync(job, null, TestContext.Current.CancellationToken);

        var window = Assert.Single(result.Windows);
        Assert.Equal(new AudioWindow(0, audio.Samples.Length), window.Window);
        var steps = WhisperConformanceTests.ClipReference(clip).GetProperty("greedy").GetProperty("steps").EnumerateArray().ToArray();
        Assert.Equal(steps.Length, window.Tokens.Count);
        for (var i = 0; i < steps.Length; i++)
        {
            var (expected, ours) = (steps[i], window.Tokens[i]);
            Assert.Equal(expected.GetProperty("token").GetInt32(), ours.Token);
            Assert.Equal(expected.GetProperty("top_ids").EnumerateArray().Select(e => e.GetInt32()), ours.Top.Select(t => t.Token));
            Assert.True(Math.Abs(expected.GetProperty("logprob").GetDouble() - ours.Logprob) <= LogprobTolerance, $"{clip} step {i}: {ours.Logprob} vs {expected.GetProperty("logprob").GetDouble()}");
        }
        Assert.Equal("en", result.Language);
        Assert.Equal(0.0, window.Temperature);
        Assert.Equal(TinyWhisper.Tokenizer.Decode(window.Tokens.Select(t => t.Token)), window.Text);
        Assert.InRange(window.NoSpeechProb!.Value, 0, 1);
    }

    [Theory]
    [InlineData("speech_en_16k")]
    [InlineData("speech_de_16k")]
    public async Task Language_is_detected_on_the_first_window_as_the_reference_does(string clip)
    {
        var executor = TinyWhisper.Executor();
        var audio = TinyWhisper.Audio(clip);
        var expected = WhisperConformanceTests.ClipReference(clip).GetProperty("language_token").GetInt32();
        var job = new SpeechJob(audio, executor.PlanWindows(audio), SpeechTask.Transcribe, null, null, Greedy, MaxTokensPerWindow: 2);
        var result = await executor.TranscribeAsync(job, null, TestContext.Current.CancellationToken);
        Assert.Equal(TinyWhisper.Tokenizer.Special.LanguageCode(expected), result.Language);
    }

    /// <summary>The validator's path: the executor's tokens teacher-forced on the same audio and windows give this model's logprobs back exactly.</summary>
    [Fact]
    public async Task Replaying_a_transcription_with_its_own_tokens_gives_similarity_1()
    {
        var executor = TinyWhisper.Executor();
        var audio = TinyWhisper.Audio("speech_long_16k");
        var windows = executor.PlanWindows(audio);
        var job = new SpeechJob(audio, windows, SpeechTask.Transcribe, "de", "Ein Satz zum Kontext.", Greedy, MaxTokensPerWindow: 12);
        var original = await executor.TranscribeAsync(job, null, TestContext.Current.CancellationToken);
        var replay = await executor.TranscribeAsync(
            job with { Enforced = original.Windows.Select(w => new EnforcedWindow(w.Tokens.Select(t => t.Token).ToArray(), w.Temperature)).ToArray() },
            null, TestContext.Current.CancellationToken);

        var comparison = LogprobComparison.Compare(Wire(original), Wire(replay));
        Assert.Equal(LogprobComparisonOutcome.Compared, comparison.Outcome);
        Assert.Equal(1.0, comparison.Similarity);
    }

    /// <summary>
    /// Windows decoded together give what each gives alone, also when they end at different steps and leave the
    /// batch (their cache rows reclaimed, the survivors moved down): replayed prefixes of 3, 9 and 6 tokens.
    /// </summary>
    [Fact]
    public async Task Windows_of_a_batch_decode_as_they_would_alone()
    {
        var ct = TestContext.Current.CancellationToken;
        var executor = TinyWhisper.Executor(slots: 3);
        var audio = TinyWhisper.Audio("speech_long_16k");
        var windows = executor.PlanWindows(audio);
        Assert.Equal(3, windows.Count);
        var greedy = await executor.TranscribeAsync(new SpeechJob(audio, windows, SpeechTask.Transcribe, "en", null, Greedy, MaxTokensPerWindow: 10), null, ct);
        int[] lengths = [3, 9, 6];
        var enforced = lengths.Select((n, w) => new EnforcedWindow(greedy.Windows[w].Tokens.Take(n).Select(t => t.Token).ToArray(), 0)).ToArray();

        var together = await executor.TranscribeAsync(new SpeechJob(audio, windows, SpeechTask.Transcribe, "en", null, Greedy, Enforced: enforced), null, ct);
        for (var w = 0; w < windows.Count; w++)
        {
            var alone = (await executor.TranscribeAsync(new SpeechJob(audio, [windows[w]], SpeechTask.Transcribe, "en", null, Greedy, Enforced: [enforced[w]]), null, ct)).Windows[0];
            Assert.Equal(lengths[w], together.Windows[w].Tokens.Count);
            Assert.Equal(alone.Tokens.Select(t => t.Token), together.Windows[w].Tokens.Select(t => t.Token));
            for (var i = 0; i < alone.Tokens.Count; i++)
            {
                // Batched and single-row GEMMs may sum in another order: float32 rounding, nothing more.
                Assert.Equal(alone.Tokens[i].Logprob, together.Windows[w].Tokens[i].Logprob, 1e-5);
                Assert.Equal(greedy.Windows[w].Tokens[i].Logprob, together.Windows[w].Tokens[i].Logprob, 1e-5);
            }
        }
    }

    /// <summary>
    /// Jobs that arrive together are decoded together where their prompts allow (same length and timestamp mode) and
    /// each gets what it gets alone; a job its caller cancels is answered as cancelled without disturbing the others.
    /// </summary>
    [Fact]
    public async Task Concurrent_jobs_share_batches_and_each_gets_its_own_result()
    {
        var ct = TestContext.Current.CancellationToken;
        var executor = TinyWhisper.Executor(slots: 4);
        var (en, de, long_) = (TinyWhisper.Audio("speech_en_16k"), TinyWhisper.Audio("speech_de_16k"), TinyWhisper.Audio("speech_long_16k"));
        SpeechJob[] jobs =
        [
            new(en, executor.PlanWindows(en), SpeechTask.Transcribe, "en", null, Greedy, MaxTokensPerWindow: 6),
            new(de, executor.PlanWindows(de), SpeechTask.Translate, "de", null, Greedy, MaxTokensPerWindow: 9),
            new(long_, executor.PlanWindows(long_), SpeechTask.Transcribe, null, null, Greedy, MaxTokensPerWindow: 5),
            new(en, executor.PlanWindows(en), SpeechTask.Transcribe, "en", null, Greedy, Timestamps: true, MaxTokensPerWindow: 7),
        ];
        var alone = new List<SpeechResult>();
        foreach (var job in jobs) alone.Add(await executor.TranscribeAsync(job, null, ct));

        using var cancelled = new CancellationTokenSource();
        var doomed = executor.TranscribeAsync(jobs[2], null, cancelled.Token);
        var together = jobs.Select(job => executor.TranscribeAsync(job, null, ct)).ToArray();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => doomed);
        var results = await Task.WhenAll(together);

        for (var j = 0; j < jobs.Length; j++)
        {
            Assert.Equal(alone[j].Language, results[j].Language);
            Assert.Equal(alone[j].Windows.Count, results[j].Windows.Count);
            for (var w = 0; w < alone[j].Windows.Count; w++)
            {
                var (a, t) = (alone[j].Windows[w], results[j].Windows[w]);
                Assert.Equal(a.Window, t.Window);
                Assert.Equal(a.Tokens.Select(x => x.Token), t.Tokens.Select(x => x.Token));
                // Rows batched with other jobs' rows: float32 rounding of another summation order, nothing more.
                for (var i = 0; i < a.Tokens.Count; i++) Assert.Equal(a.Tokens[i].Logprob, t.Tokens[i].Logprob, 1e-5);
            }
        }
    }

    [Fact]
    public async Task A_stream_that_throws_fails_its_own_job_only()
    {
        var ct = TestContext.Current.CancellationToken;
        var executor = TinyWhisper.Executor();
        var audio = TinyWhisper.Audio("speech_en_16k");
        var job = new SpeechJob(audio, executor.PlanWindows(audio), SpeechTask.Transcribe, "en", null, Greedy, MaxTokensPerWindow: 6);
        var broken = executor.TranscribeAsync(job, (_, _) => throw new IOException("client went away"), ct);
        var healthy = executor.TranscribeAsync(job, null, ct);
        Assert.Equal("client went away", (await Assert.ThrowsAsync<IOException>(() => broken)).Message);
        Assert.Equal(6, (await healthy).Windows[0].Tokens.Count);
    }

    [Fact]
    public async Task Timestamps_follow_the_rules_and_segments_are_offset_by_their_window()
    {
        var executor = TinyWhisper.Executor();
        var audio = TinyWhisper.Audio("speech_long_16k");
        var special = TinyWhisper.Tokenizer.Special;
        var begin = special.TimestampBegin!.Value;
        var result = await executor.TranscribeAsync(
            new SpeechJob(audio, executor.PlanWindows(audio), SpeechTask.Transcribe, "en", null, Greedy, Timestamps: true, MaxTokensPerWindow: 40),
            null, TestContext.Current.CancellationToken);
        foreach (var window in result.Windows)
        {
            var ids = window.Tokens.Select(t => t.Token).ToArray();
            // A timestamp first (this checkpoint sets no max_initial_timestamp_index, so any).
            Assert.True(special.IsTimestamp(ids[0]), $"window starts with {ids[0]}");
            var stamps = ids.Where(special.IsTimestamp).ToArray();
            Assert.Equal(stamps.Order(), stamps); // never decreasing
            Assert.DoesNotContain(special.NoTimestamps!.Value, ids);
            foreach (var segment in window.Segments)
            {
                Assert.InRange(segment.Start, window.Window.StartSeconds, window.Window.EndSeconds);
                Assert.InRange(segment.End, segment.Start, window.Window.EndSeconds);
            }
        }
        // Every window has segments, so the range checks above saw times offset by each window's start.
        Assert.All(result.Windows, w => Assert.NotEmpty(w.Segments));
    }

    [Fact]
    public async Task Failing_windows_climb_the_temperature_ladder_and_seeded_runs_repeat()
    {
        var executor = TinyWhisper.Executor();
        var audio = TinyWhisper.Audio("speech_en_16k");
        // A random model's average logprob is near −9, far below −1: every rung fails until the last.
        var job = new SpeechJob(audio, executor.PlanWindows(audio), SpeechTask.Translate, "de", null,
            Greedy with { Seed = 7, Mode = LogprobsMode.Processed }, TemperatureFallback: true, MaxTokensPerWindow: 8);
        var first = await executor.TranscribeAsync(job, null, TestContext.Current.CancellationToken);
        var second = await executor.TranscribeAsync(job, null, TestContext.Current.CancellationToken);
        var window = Assert.Single(first.Windows);
        Assert.Equal(1.0, window.Temperature);
        Assert.True(window.AvgLogprob < TemperatureFallback.LogprobThreshold);
        Assert.Equal(window.Tokens, second.Windows[0].Tokens, (a, b) => a.Token == b.Token && a.Logprob == b.Logprob);
    }

    [Fact]
    public async Task Tokens_stream_per_window_as_the_result_lists_them()
    {
        var executor = TinyWhisper.Executor();
        var audio = TinyWhisper.Audio("speech_long_16k");
        var streamed = new List<(int Window, int Token)>();
        var result = await executor.TranscribeAsync(new SpeechJob(audio, executor.PlanWindows(audio), SpeechTask.Transcribe, "en", null, Greedy, MaxTokensPerWindow: 5),
            (w, t) => streamed.Add((w, t.Token)), TestContext.Current.CancellationToken);
        for (var w = 0; w < result.Windows.Count; w++)
            Assert.Equal(result.Windows[w].Tokens.Select(t => t.Token), streamed.Where(s => s.Window == w).Select(s => s.Token));
    }

    [Fact]
    public async Task Jobs_this_model_cannot_run_are_refused_naming_the_field()
    {
        var executor = TinyWhisper.Executor();
        var audio = TinyWhisper.Audio("speech_long_16k");
        var ct = TestContext.Current.CancellationToken;
        async Task<(string Field, string Message)> Refusal(SpeechJob job)
        {
            var e = await Assert.ThrowsAsync<SpeechJobException>(() => executor.TranscribeAsync(job, null, ct));
            return (e.Field, e.Message);
        }
        SpeechJob Job(IReadOnlyList<AudioWindow> windows, string language = "en", IReadOnlyList<EnforcedWindow>? enforced = null) =>
            new(audio, windows, SpeechTask.Transcribe, language, null, Greedy, Enforced: enforced);

        var (field, message) = await Refusal(Job([new AudioWindow(0, 500_000)]));
        Assert.Equal(("windows", true), (field, message.Contains("at most 30 s")));
        Assert.Equal("windows", (await Refusal(Job([new AudioWindow(0, audio.Samples.Length + 1)]))).Field);
        (field, message) = await Refusal(Job([new AudioWindow(0, 16_000)], language: "xx"));
        Assert.Equal(("language", true), (field, message.Contains("'xx'")));
        Assert.Equal("windows", (await Refusal(Job([new AudioWindow(0, 16_000)], enforced: [new EnforcedWindow([1], 0), new EnforcedWindow([2], 0)]))).Field);
        (field, message) = await Refusal(Job([new AudioWindow(0, 16_000)], enforced: [new EnforcedWindow([1, TinyWhisper.Config.EosTokenId], 0)]));
        Assert.Equal(("enforced_tokens", true), (field, message.Contains("50257")));
        Assert.Equal("enforced_tokens", (await Refusal(Job([new AudioWindow(0, 16_000)], enforced: [new EnforcedWindow(Enumerable.Repeat(7, 225).ToArray(), 0)]))).Field);
    }

    private static List<ChatCompletionLogprob> Wire(SpeechResult result) =>
        result.Windows.SelectMany(w => w.Tokens).Select(t =>
            ChatCompletionLogprob.ForTokenId(t.Token, t.Logprob, t.Top.Select(top => TopLogprob.ForTokenId(top.Token, top.Logprob)).ToList())).ToList();
}

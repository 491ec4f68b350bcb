using System.Text.Json;
using MLNode.Engines.Asr;
using MLNode.Engines.Asr.Audio;
using MLNode.Engines.Llm.Sampling;
using MLNode.Protocol.OpenAi;
using MLNode.Protocol.Validation;
using MLNode.Tests;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Asr;

/// <summary>
/// Qwen3-ASR's thinker on qwen3-asr-tiny against the official modeling code (fp32): the prompt, 12 greedy steps with
/// top-5 logprobs through the executor (front end, encoder, prefill from embeddings, KV-cache decode steps), and replay.
/// </summary>
public sealed class Qwen3AsrDecodingTests
{
    // fp32 on both sides with different summation orders: ~1e-6 on these logprobs; 1e-4 as for the Qwen LLM fixtures.
    private const double ReferenceTolerance = 1e-4;

    // The same code on the same CPU, only with other batch shapes: batched with another window (right-padded prefill,
    // batched decode GEMMs), or one forward over the whole sequence instead of prefill and cached decode steps.
    private const double BatchTolerance = 1e-5;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly SamplingParams Greedy = new(Temperature: 0, TopLogprobs: 5);

    private static CanonicalAudio Clip(string name) => new(WavSamples.Read(Fixtures.Path("audio", $"{name}.wav")), "");

    private static SpeechJob Job(CanonicalAudio audio, IReadOnlyList<AudioWindow>? windows = null, int maxTokens = 12, IReadOnlyList<EnforcedWindow>? enforced = null,
        SpeechTask task = SpeechTask.Transcribe, string? language = null, bool timestamps = false) =>
        new(audio, windows ?? Qwen3AsrTiny.Executor.PlanWindows(audio), task, language, Prompt: null, Greedy, timestamps,
            MaxTokensPerWindow: maxTokens, Enforced: enforced);

    [Fact]
    public void Prompt_is_built_from_the_config_ids_around_the_reference_text_ids()
    {
        var config = Qwen3AsrTiny.Config;
        var expected = Qwen3AsrTiny.Reference().GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32());
        Assert.Equal(expected, Qwen3AsrTiny.Format(config).Build(context: null, languageName: null, config.Audio.TokensFor(647)));
    }

    /// <summary>
    /// Skipped: the fixture's greedy steps cannot come from its stored weights. Its audio embeddings match ours to 1e-4,
    /// and two independent forwards of the standard Qwen3 math over the stored thinker.model.* (this engine's, and plain
    /// TorchSharp ops with eager attention) agree to 1e-7; yet the reference's five best tokens at every step sit at
    /// −5.4…−7.5 in that distribution, not near its top (−4.8), and no RoPE, mask or q/k-norm variant nor one extra
    /// prompt token moves them there. The LM head the reference used is not the stored embed_tokens (the thinker declares
    /// its tied keys as a transformers-4 list, which transformers 5 may not tie), so the fixture needs regenerating with
    /// lm_head tied (or stored).
    /// </summary>
    [Fact(Skip = "qwen3-asr-tiny's greedy reference was computed with an LM head that is not in the checkpoint; see the summary")]
    public async Task Greedy_decoding_matches_the_reference()
    {
        var steps = Qwen3AsrTiny.Reference().GetProperty("greedy").EnumerateArray().ToArray();
        var result = await Qwen3AsrTiny.Executor.TranscribeAsync(Job(Clip("speech_en_16k"), maxTokens: steps.Length), null, Ct);

        var window = Assert.Single(result.Windows);
        Assert.Equal(steps.Length, window.Tokens.Count);
        for (var i = 0; i < steps.Length; i++)
        {
            var token = window.Tokens[i];
            Assert.Equal(steps[i].GetProperty("token").GetInt32(), token.Token);
            Assert.True(Math.Abs(token.Logprob - steps[i].GetProperty("logprob").GetDouble()) <= ReferenceTolerance, $"step {i}: {token.Logprob}");
            Assert.Equal(Ints(steps[i].GetProperty("top_ids")), token.Top.Select(t => t.Token));
            var expected = steps[i].GetProperty("top_logprobs").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            for (var k = 0; k < expected.Length; k++)
                Assert.True(Math.Abs(token.Top[k].Logprob - expected[k]) <= ReferenceTolerance, $"step {i} top {k}: {token.Top[k].Logprob} vs {expected[k]}");
        }
    }

    [Fact]
    public async Task Replaying_the_greedy_tokens_gives_the_same_logprobs()
    {
        var audio = Clip("speech_en_16k");
        var executed = (await Qwen3AsrTiny.Executor.TranscribeAsync(Job(audio), null, Ct)).Windows[0];
        var enforced = new EnforcedWindow(executed.Tokens.Select(t => t.Token).ToArray(), executed.Temperature);
        var replayed = (await Qwen3AsrTiny.Executor.TranscribeAsync(Job(audio, maxTokens: 1, enforced: [enforced]), null, Ct)).Windows[0];

        // The appended end of turn ends the replay; the budget of the original request plays no part.
        Assert.Equal(executed.Tokens.Select(t => t.Token), replayed.Tokens.Select(t => t.Token));
        // Same prefill and decode steps in the same batch shape: the same bits.
        Assert.Equal(executed.Tokens.Select(t => t.Logprob), replayed.Tokens.Select(t => t.Logprob));
        var comparison = LogprobComparison.Compare(Wire(executed.Tokens), Wire(replayed.Tokens));
        Assert.Equal(LogprobComparisonOutcome.Compared, comparison.Outcome);
        Assert.Equal(1.0, comparison.Similarity);
    }

    [Fact]
    public async Task Seeded_sampling_repeats_and_its_replay_reports_the_same_processed_logprobs()
    {
        var audio = Clip("speech_en_16k");
        var sampled = Job(audio, maxTokens: 6) with { Sampling = new SamplingParams(Temperature: 0.8, TopK: 50, Seed: 7, TopLogprobs: 5) };
        var first = (await Qwen3AsrTiny.Executor.TranscribeAsync(sampled, null, Ct)).Windows[0];
        var again = (await Qwen3AsrTiny.Executor.TranscribeAsync(sampled, null, Ct)).Windows[0];
        Assert.Equal(first.Tokens.Select(t => (t.Token, t.Logprob)), again.Tokens.Select(t => (t.Token, t.Logprob)));
        Assert.Equal(0.8, first.Temperature);

        var replay = sampled with { Enforced = [new EnforcedWindow(first.Tokens.Select(t => t.Token).ToArray(), first.Temperature)] };
        var replayed = (await Qwen3AsrTiny.Executor.TranscribeAsync(replay, null, Ct)).Windows[0];
        Assert.Equal(first.Tokens.Select(t => (t.Token, t.Logprob)), replayed.Tokens.Select(t => (t.Token, t.Logprob)));
        Assert.Equal(1.0, LogprobComparison.Compare(Wire(first.Tokens), Wire(replayed.Tokens)).Similarity);
    }

    [Fact]
    public async Task Decoding_through_the_cache_matches_one_forward_over_the_whole_sequence()
    {
        var audio = Clip("speech_en_16k");
        var window = (await Qwen3AsrTiny.Executor.TranscribeAsync(Job(audio), null, Ct)).Windows[0];
        using var scope = NewDisposeScope();
        var config = Qwen3AsrTiny.Config;
        var mel = new LogMelSpectrogram(config.Audio.NumMelBins).Window(audio.Samples, padTo: null, CPU);
        var prompt = Qwen3AsrTiny.Format(config).Build(context: null, languageName: null, config.Audio.TokensFor((int)mel.shape[1]));
        int[] sequence = [.. prompt, .. window.Tokens.Select(t => t.Token)];
        var logprobs = Qwen3AsrTiny.Model.Logits([sequence], Qwen3AsrTiny.Model.EncodeAudio([mel]))[0].log_softmax(-1);
        for (var i = 0; i < window.Tokens.Count; i++)
        {
            var position = logprobs[prompt.Length - 1 + i];
            Assert.True(Math.Abs(position[window.Tokens[i].Token].item<float>() - window.Tokens[i].Logprob) <= BatchTolerance, $"step {i}");
            Assert.Equal(position.topk(5).indexes.data<long>().ToArray().Select(id => (int)id), window.Tokens[i].Top.Select(t => t.Token));
        }
    }

    [Fact]
    public async Task Windows_decoded_together_match_windows_decoded_alone()
    {
        var en = Clip("speech_en_16k").Samples;
        var de = Clip("speech_de_16k").Samples;
        var audio = new CanonicalAudio([.. en, .. de], "");
        AudioWindow[] windows = [new(0, en.Length), new(en.Length, en.Length + de.Length)];
        var streamed = new List<(int Window, int Token)>();
        var together = await Qwen3AsrTiny.Executor.TranscribeAsync(Job(audio, windows, maxTokens: 8), (w, t) => { lock (streamed) streamed.Add((w, t.Token)); }, Ct);

        Assert.Equal(2, together.Windows.Count);
        for (var w = 0; w < windows.Length; w++)
        {
            var alone = (await Qwen3AsrTiny.Executor.TranscribeAsync(Job(audio, [windows[w]], maxTokens: 8), null, Ct)).Windows[0];
            var batched = together.Windows[w];
            Assert.Equal(windows[w], batched.Window);
            Assert.Equal(alone.Tokens.Select(t => t.Token), batched.Tokens.Select(t => t.Token));
            for (var i = 0; i < alone.Tokens.Count; i++)
                Assert.True(Math.Abs(alone.Tokens[i].Logprob - batched.Tokens[i].Logprob) <= BatchTolerance, $"window {w} step {i}");
            Assert.Equal(batched.Tokens.Select(t => t.Token), streamed.Where(s => s.Window == w).Select(s => s.Token));
        }
    }

    [Fact]
    public async Task Requests_the_model_cannot_serve_are_refused_before_decoding()
    {
        var audio = Clip("speech_en_16k");
        Assert.Equal("model", (await Assert.ThrowsAsync<SpeechJobException>(() => Qwen3AsrTiny.Executor.TranscribeAsync(Job(audio, task: SpeechTask.Translate), null, Ct))).Field);
        Assert.Equal("response_format", (await Assert.ThrowsAsync<SpeechJobException>(() => Qwen3AsrTiny.Executor.TranscribeAsync(Job(audio, timestamps: true), null, Ct))).Field);
        Assert.Equal("language", (await Assert.ThrowsAsync<SpeechJobException>(() => Qwen3AsrTiny.Executor.TranscribeAsync(Job(audio, language: "xx"), null, Ct))).Field);
        Assert.Equal("windows", (await Assert.ThrowsAsync<SpeechJobException>(() => Qwen3AsrTiny.Executor.TranscribeAsync(Job(audio, enforced: []), null, Ct))).Field);
        Assert.Equal("enforced_tokens", (await Assert.ThrowsAsync<SpeechJobException>(() => Qwen3AsrTiny.Executor.TranscribeAsync(Job(audio, enforced: [new EnforcedWindow([600], 0)]), null, Ct))).Field);
        Assert.Equal("windows", (await Assert.ThrowsAsync<SpeechJobException>(() => Qwen3AsrTiny.Executor.TranscribeAsync(Job(audio, [new AudioWindow(0, audio.Samples.Length + 1)]), null, Ct))).Field);
    }

    [Fact]
    public void Capabilities_and_windows_follow_the_model()
    {
        var speech = Qwen3AsrTiny.Executor.Speech;
        Assert.Equal((30.0, false, false), (speech.WindowSeconds, speech.Translation, speech.Timestamps));
        Assert.Contains("en", speech.Languages);
        // 70 s: three windows of at most 30 s covering every sample, cut by the shared planner.
        var samples = WavSamples.Read(Fixtures.Path("audio", "speech_long_16k.wav"));
        var windows = Qwen3AsrTiny.Executor.PlanWindows(new CanonicalAudio(samples, ""));
        Assert.Equal(new AudioWindowPlanner(30).Plan(samples), windows);
        Assert.Equal(3, windows.Count);
        Assert.Equal((0, samples.Length), (windows[0].Start, windows[^1].End));
        Assert.All(windows.Zip(windows.Skip(1)), pair => Assert.Equal(pair.First.End, pair.Second.Start));
        Assert.All(windows, w => Assert.InRange(w.Length, 1, 480_000));
    }

    private static IEnumerable<int> Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32());

    private static List<ChatCompletionLogprob> Wire(IReadOnlyList<TokenLogprob> tokens) =>
        tokens.Select(t => ChatCompletionLogprob.ForTokenId(t.Token, t.Logprob, t.Top.Select(top => TopLogprob.ForTokenId(top.Token, top.Logprob)).ToList())).ToList();
}

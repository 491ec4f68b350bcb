using MLNode.Engines.Asr;
using MLNode.Engines.Asr.Audio;
using MLNode.Engines.Hosting;
using MLNode.Engines.Llm.Sampling;
using MLNode.Runtime.Registry;

namespace MLNode.Worker.Tests;

/// <summary>
/// Stands in for Whisper (architecture "whisper": translation and timestamps) or Qwen3-ASR ("qwen3_asr": neither) in
/// the endpoint tests; the real engines have their own tests against the fixtures.
/// </summary>
public sealed class ScriptedSpeechEngine : IExecutorFactory
{
    /// <summary>The windows of the scripted model: short, so the 6.5 s fixture is cut once (in [3 s, 4 s)) into two windows.</summary>
    public const double WindowSeconds = 4;

    public ScriptedSpeechExecutor? Loaded { get; private set; }

    public bool Supports(Modality modality, string architecture) => modality == Modality.Asr;

    public Task<IModelExecutor> LoadAsync(ModelLoadRequest request, CancellationToken ct)
    {
        var entry = request.Entry;
        var whisper = entry.Architecture == "whisper";
        Loaded = new ScriptedSpeechExecutor(
            new ModelCard(entry.Id, entry.Modality, entry.Architecture, entry.Dtype, "cpu", request.Folder, entry.Limits, 0, entry.Pricing),
            new SpeechCapabilities(WindowSeconds, Translation: whisper, Timestamps: whisper, Languages: ["en", "de", "ja"]));
        return Task.FromResult<IModelExecutor>(Loaded);
    }
}

/// <summary>
/// A deterministic toy speech model: each step's logits are a fixed function of the window's samples, the position and
/// the previous token, so the same audio gives the same tokens, and a replay teacher-forced on them recomputes exactly
/// the same logprobs — what a real engine guarantees on the same hardware.
/// </summary>
public sealed class ScriptedSpeechExecutor(ModelCard card, SpeechCapabilities speech) : ISpeechExecutor
{
    /// <summary>Ids below this are words " w{id}"; the end token and the rest are special.</summary>
    public const int Words = 40;
    public const int EndToken = 40;
    private const int Vocabulary = 48;

    private readonly AudioWindowPlanner _planner = new(speech.WindowSeconds);

    public ModelCard Card { get; } = card;
    public IPocProver? Poc => null;
    public SpeechCapabilities Speech { get; } = speech;

    /// <summary>Every job received, in order, for the tests to inspect.</summary>
    public List<SpeechJob> Jobs { get; } = [];

    public IReadOnlyList<AudioWindow> PlanWindows(CanonicalAudio audio) => _planner.Plan(audio.Samples);

    public string Decode(IReadOnlyList<int> tokens) => string.Concat(tokens.Where(t => t < Words).Select(t => $" w{t}"));

    public async Task<SpeechResult> TranscribeAsync(SpeechJob job, Action<int, TokenLogprob>? onToken, CancellationToken ct)
    {
        lock (Jobs) Jobs.Add(job);
        var results = new List<WindowResult>();
        for (var w = 0; w < job.Windows.Count; w++)
        {
            await Task.Yield();
            ct.ThrowIfCancellationRequested();
            var window = job.Windows[w];
            var samples = job.Audio.Samples.AsSpan(window.Start, window.Length).ToArray();
            var enforced = job.Enforced?[w];
            var temperature = enforced?.Temperature ?? job.Sampling.Temperature;
            var random = new Random(unchecked((int)(job.Sampling.Seed ?? 0) + w));
            var emitted = new List<TokenLogprob>();
            // Teacher forcing emits the given tokens and then the end token, as a real engine appends it.
            var steps = enforced is not null ? enforced.Tokens.Count + 1 : 2 + window.Length / 8000;
            for (var step = 0; step < steps; step++)
            {
                var logprobs = LogSoftmax(Logits(samples, step, emitted.Count > 0 ? emitted[^1].Token : -1));
                var token = enforced is not null
                    ? step < enforced.Tokens.Count ? enforced.Tokens[step] : EndToken
                    : step == steps - 1 ? EndToken : Pick(logprobs, temperature, random);
                if (token == EndToken) break;
                var top = Enumerable.Range(0, Vocabulary).OrderByDescending(v => logprobs[v]).ThenBy(v => v)
                    .Take(job.Sampling.TopLogprobs).Select(v => (v, logprobs[v])).ToList();
                var emittedToken = new TokenLogprob(token, logprobs[token], top);
                emitted.Add(emittedToken);
                onToken?.Invoke(w, emittedToken);
            }
            var ids = emitted.Select(t => t.Token).ToList();
            var text = Decode(ids);
            var half = ids.Count / 2;
            IReadOnlyList<SpeechSegment> segments = job.Timestamps && ids.Count >= 2
                ?
                [
                    new SpeechSegment(window.StartSeconds, (window.StartSeconds + window.EndSeconds) / 2, Decode(ids[..half]), ids[..half]),
                    new SpeechSegment((window.StartSeconds + window.EndSeconds) / 2, window.EndSeconds, Decode(ids[half..]), ids[half..]),
                ]
                : [new SpeechSegment(window.StartSeconds, window.EndSeconds, text, ids)];
            results.Add(new WindowResult(window, temperature, emitted, text, segments,
                emitted.Count > 0 ? emitted.Average(t => t.Logprob) : 0, 1.0, null));
        }
        return new SpeechResult(job.Language ?? "en", results);
    }

    private static float[] Logits(float[] samples, int step, int previous)
    {
        var slice = samples.Length / 8;
        var from = Math.Min(step % 8 * slice, Math.Max(0, samples.Length - slice));
        var energy = samples.Skip(from).Take(slice).Sum(x => (double)x * x) / Math.Max(1, slice);
        return [.. Enumerable.Range(0, Vocabulary).Select(v => (float)(3 * Math.Cos(0.7 * v + 400 * energy + 0.3 * previous + 0.05 * step)))];
    }

    private static float[] LogSoftmax(float[] logits)
    {
        var max = logits.Max();
        var log = Math.Log(logits.Sum(l => Math.Exp(l - max))) + max;
        return [.. logits.Select(l => (float)(l - log))];
    }

    private static int Pick(float[] logprobs, double temperature, Random random)
    {
        if (temperature < 1e-5)
            return Enumerable.Range(0, Words).OrderByDescending(v => logprobs[v]).ThenBy(v => v).First();
        var weights = Enumerable.Range(0, Words).Select(v => Math.Exp(logprobs[v] / temperature)).ToArray();
        var u = random.NextDouble() * weights.Sum();
        for (var v = 0; v < Words; v++)
        {
            u -= weights[v];
            if (u <= 0) return v;
        }
        return Words - 1;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

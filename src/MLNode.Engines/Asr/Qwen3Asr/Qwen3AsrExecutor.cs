using Microsoft.Extensions.Logging;
using MLNode.Engines.Asr.Audio;
using MLNode.Engines.Hosting;
using MLNode.Engines.Layers;
using MLNode.Engines.Llm.Sampling;
using static TorchSharp.torch;

namespace MLNode.Engines.Asr.Qwen3Asr;

/// <summary>
/// A loaded Qwen3-ASR model. Each window is transcribed on its own (no text carries over): its unpadded log-mel goes
/// through the audio tower, the embeddings fill the prompt's placeholders, and the windows of a job decode as one batch.
/// No translation and no timestamps: a window yields one segment. Windows decode once, at the job's temperature (the
/// model has no temperature-fallback rule). A replay teacher-forces each window's tokens plus the end of turn.
/// Jobs run one at a time on the model; a job's windows go through in batches of up to the KV cache's slots.
/// </summary>
public sealed class Qwen3AsrExecutor : ISpeechExecutor
{
    /// <summary>The qwen-asr SDK zero-pads audio shorter than 0.5 s to 0.5 s before transcribing it.</summary>
    public const int MinWindowSamples = CanonicalAudio.SampleRate / 2;

    private readonly Qwen3AsrChatFormat _format;
    private readonly KvCache _cache;
    private readonly Qwen3AsrBatchDecoder _decoder;
    private readonly LogMelSpectrogram _mel;
    private readonly AudioWindowPlanner _planner;
    private readonly SemaphoreSlim _gate = new(1, 1);

    public Qwen3AsrExecutor(ModelCard card, Qwen3AsrThinker model, Qwen3AsrChatFormat format, KvCache cache, IReadOnlySet<int> stopTokens, double windowSeconds, ILogger logger)
    {
        (Card, Model, _format, _cache) = (card, model, format, cache);
        StopTokens = stopTokens;
        _decoder = new Qwen3AsrBatchDecoder(model, cache, stopTokens, logger);
        _mel = new LogMelSpectrogram(model.Config.Audio.NumMelBins);
        Speech = new SpeechCapabilities(windowSeconds, Translation: false, Timestamps: false, Qwen3AsrLanguages.Codes);
        _planner = new AudioWindowPlanner(windowSeconds);
    }

    public ModelCard Card { get; }
    public Qwen3AsrThinker Model { get; }

    /// <summary>Ids that end a window: the end of turn, and the checkpoint's EOS ids.</summary>
    public IReadOnlySet<int> StopTokens { get; }

    /// <summary>Qwen3-ASR has no PoC definition.</summary>
    public IPocProver? Poc => null;

    public SpeechCapabilities Speech { get; }

    private Device Device => _device ??= Model.parameters().First().device;
    private Device? _device;

    /// <summary>Windows of at most <see cref="SpeechCapabilities.WindowSeconds"/>, cut at quiet points as vLLM cuts them.</summary>
    public IReadOnlyList<AudioWindow> PlanWindows(CanonicalAudio audio) => _planner.Plan(audio.Samples);

    /// <summary>The transcript in a window's tokens so far (see <see cref="Qwen3AsrChatFormat.Decode"/>): never the "language X" header.</summary>
    public string Decode(IReadOnlyList<int> tokens) => _format.Decode(tokens);

    public async Task<SpeechResult> TranscribeAsync(SpeechJob job, Action<int, TokenLogprob>? onToken, CancellationToken ct)
    {
        var languageName = Validate(job);
        await _gate.WaitAsync(ct);
        try
        {
            return await Task.Run(() => Transcribe(job, languageName, onToken, ct), ct);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Refuses what this model cannot do before any work; returns the forced language's name, if any.</summary>
    private string? Validate(SpeechJob job)
    {
        if (job.Task != SpeechTask.Transcribe)
            throw new SpeechJobException("model", "Qwen3-ASR transcribes only; it has no translation task");
        if (job.Timestamps)
            throw new SpeechJobException("response_format", "Qwen3-ASR gives no timestamps");
        if (job.Enforced is { } enforced)
        {
            if (enforced.Count != job.Windows.Count)
                throw new SpeechJobException("windows", $"{enforced.Count} enforced windows for {job.Windows.Count} audio windows");
            var vocab = Model.Config.Text.VocabSize;
            var outside = enforced.SelectMany(w => w.Tokens).Where(t => t < 0 || t >= vocab).ToArray();
            if (outside.Length > 0)
                throw new SpeechJobException("enforced_tokens", $"enforced tokens [{string.Join(", ", outside)}] lie outside the vocabulary of {vocab}");
        }
        foreach (var w in job.Windows)
            if (w.Start < 0 || w.End > job.Audio.Samples.Length || w.Length <= 0)
                throw new SpeechJobException("windows", $"window [{w.Start}, {w.End}) is not inside the audio's {job.Audio.Samples.Length} samples");
        if (job.Language is null) return null;
        return Qwen3AsrLanguages.NameOf(job.Language)
            ?? throw new SpeechJobException("language", $"language '{job.Language}' is not one Qwen3-ASR knows ({string.Join(", ", Qwen3AsrLanguages.Codes)})");
    }

    private SpeechResult Transcribe(SpeechJob job, string? languageName, Action<int, TokenLogprob>? onToken, CancellationToken ct)
    {
        var results = new WindowResult[job.Windows.Count];
        var transcripts = new Qwen3AsrTranscript[job.Windows.Count];
        for (var first = 0; first < job.Windows.Count; first += _cache.Slots)
        {
            ct.ThrowIfCancellationRequested();
            var batch = Enumerable.Range(first, Math.Min(_cache.Slots, job.Windows.Count - first)).ToArray();
            using var scope = NewDisposeScope();
            var mels = batch.Select(i => _mel.Window(Samples(job.Audio, job.Windows[i]), padTo: null, Device)).ToArray();
            var audio = Model.EncodeAudio(mels);
            var rows = batch.Select((i, b) => Row(job, i, _format.Build(job.Prompt, languageName, Model.Config.Audio.TokensFor((int)mels[b].shape[1])))).ToArray();
            var decoded = _decoder.Run(rows, audio, onToken is null ? null : (b, token) => onToken(batch[b], token), ct);
            for (var b = 0; b < batch.Length; b++)
            {
                var i = batch[b];
                transcripts[i] = _format.Parse(decoded[b].Tokens.Select(t => t.Token).ToArray(), job.Language);
                results[i] = Result(job.Windows[i], rows[b].Sampling.Temperature, decoded[b].Tokens, transcripts[i]);
            }
        }
        var language = job.Language ?? transcripts.Select(t => t.Language).FirstOrDefault(l => l is not null) ?? "";
        return new SpeechResult(language, results);
    }

    /// <summary>A window's samples, zero-padded to <see cref="MinWindowSamples"/> when shorter.</summary>
    private static float[] Samples(CanonicalAudio audio, AudioWindow window)
    {
        var samples = new float[Math.Max(window.Length, MinWindowSamples)];
        audio.Samples.AsSpan(window.Start, window.Length).CopyTo(samples);
        return samples;
    }

    /// <summary>How window <paramref name="i"/> decodes: sampled within its token budget, or forced to its enforced tokens.</summary>
    private Qwen3AsrBatchDecoder.Row Row(SpeechJob job, int i, int[] prompt)
    {
        var budget = _cache.Capacity - prompt.Length;
        if (job.Enforced?[i] is { } enforced)
        {
            int[] forced = [.. enforced.Tokens, _format.Tokens.EndOfTurn];
            if (forced.Length > budget)
                throw new SpeechJobException("enforced_tokens", $"window {i}: a prompt of {prompt.Length} tokens and {forced.Length} enforced tokens exceed this model's context of {_cache.Capacity}");
            return new(prompt, job.Sampling with { Temperature = enforced.Temperature }, forced.Length, forced);
        }
        if (budget < 1)
            throw new SpeechJobException("prompt", $"window {i}: its prompt of {prompt.Length} tokens leaves no room in this model's context of {_cache.Capacity}");
        return new(prompt, job.Sampling, Math.Min(job.MaxTokensPerWindow ?? budget, budget), null);
    }

    private static WindowResult Result(AudioWindow window, double temperature, IReadOnlyList<TokenLogprob> tokens, Qwen3AsrTranscript transcript)
    {
        IReadOnlyList<SpeechSegment> segments = transcript.Text.Length == 0
            ? []
            : [new SpeechSegment(window.StartSeconds, window.EndSeconds, transcript.Text, transcript.TextTokens)];
        var avgLogprob = tokens.Count == 0 ? 0 : tokens.Average(t => (double)t.Logprob);
        return new WindowResult(window, temperature, tokens, transcript.Text, segments, avgLogprob, TextCompression.Ratio(transcript.Text), NoSpeechProb: null);
    }

    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync();
        _decoder.Dispose();
        _cache.Dispose();
        Model.Dispose();
        _gate.Dispose();
    }
}

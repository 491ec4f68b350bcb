using Microsoft.Extensions.Logging;
using MLNode.Engines.Asr.Audio;
using MLNode.Engines.Llm.Sampling;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Asr.Whisper;

/// <summary>
/// Runs speech jobs on one loaded Whisper. The windows of a job go through the encoder together, up to the cache's
/// capacity at a time, and are decoded as one batch (<see cref="WhisperBatchDecoder"/>) with the same prompt; windows
/// that fail openai's quality checks are decoded again at the next temperature of the ladder, from the same encoder
/// output. A job without a language detects it once, on its first window. Jobs take the model one at a time.
/// </summary>
internal sealed class WhisperTranscriber : IDisposable
{
    private readonly WhisperForConditionalGeneration _model;
    private readonly WhisperTokenizer _tokenizer;
    private readonly Device _device;
    private readonly ILogger _logger;
    private readonly LogMelSpectrogram _mel;
    private readonly WhisperKvCache _cache;
    private readonly WhisperBatchDecoder _decoder;
    private readonly WhisperLogitRules _textRules;
    private readonly WhisperLogitRules? _timestampRules;
    private readonly SemaphoreSlim _gate = new(1, 1);

    public WhisperTranscriber(WhisperForConditionalGeneration model, WhisperTokenizer tokenizer, int slots, Device device, ILogger logger)
    {
        var config = model.Config;
        (_model, _tokenizer, _device, _logger) = (model, tokenizer, device, logger);
        _mel = new LogMelSpectrogram(config.NumMelBins);
        _cache = new WhisperKvCache(config.DecoderLayers, slots, config.DecoderAttentionHeads, config.DModel / config.DecoderAttentionHeads,
            config.MaxTargetPositions, config.MaxSourcePositions, model.DType, device);
        _decoder = new WhisperBatchDecoder(model, _cache, tokenizer.Special);
        _textRules = new WhisperLogitRules(config, tokenizer.Special, timestamps: false, device);
        _timestampRules = tokenizer.Special.HasTimestamps ? new WhisperLogitRules(config, tokenizer.Special, timestamps: true, device) : null;
    }

    /// <summary>Samples in one window: as many as the encoder's input frames cover (480 000, 30 s).</summary>
    public int WindowSamples => _model.Config.InputFrames * LogMelSpectrogram.HopLength;

    /// <summary>Windows decoded together.</summary>
    public int Slots => _cache.Capacity;

    /// <summary>New tokens per window (openai's sample_len): half the decoder positions, the end token included.</summary>
    private int SampleLength => _model.Config.MaxTargetPositions / 2;

    public async Task<SpeechResult> TranscribeAsync(SpeechJob job, Action<int, TokenLogprob>? onToken, CancellationToken ct)
    {
        Validate(job);
        await _gate.WaitAsync(ct);
        try
        {
            return await Task.Run(() => Run(job, onToken, ct), ct);
        }
        finally
        {
            _gate.Release();
        }
    }

    private SpeechResult Run(SpeechJob job, Action<int, TokenLogprob>? onToken, CancellationToken ct)
    {
        using var noGrad = torch.no_grad();
        using var scope = NewDisposeScope();
        var special = _tokenizer.Special;
        var language = special.IsMultilingual ? job.Language : "en";
        var results = new WindowResult[job.Windows.Count];
        for (var first = 0; first < job.Windows.Count; first += Slots)
        {
            using var group = NewDisposeScope();
            var windows = Enumerable.Range(first, Math.Min(Slots, job.Windows.Count - first)).ToArray();
            var encoded = _model.Encode(stack(windows.Select(w => Mel(job.Audio, job.Windows[w])).ToArray()));
            language ??= DetectLanguage(encoded.narrow(0, 0, 1));
            var prompt = WhisperPrompt.Build(_tokenizer, job.Prompt, language, job.Task, job.Timestamps, _model.Config.MaxTargetPositions / 2 - 1);
            var maxTokens = Math.Min(Math.Min(job.MaxTokensPerWindow ?? SampleLength, SampleLength), _model.Config.MaxTargetPositions - prompt.Tokens.Count);
            DecodeGroup(job, windows, encoded, prompt, maxTokens, onToken, results, ct);
        }
        return new SpeechResult(language!, results);
    }

    /// <summary>Decodes windows (their encoder rows in order), again at higher temperatures while openai's checks fail.</summary>
    private void DecodeGroup(SpeechJob job, int[] windows, Tensor encoded, WhisperPrompt prompt, int maxTokens,
        Action<int, TokenLogprob>? onToken, WindowResult[] results, CancellationToken ct)
    {
        var replay = job.Enforced is not null;
        foreach (var w in windows)
            if (job.Enforced?[w].Tokens.Count > maxTokens)
                throw new SpeechJobException("enforced_tokens", $"window {w} has {job.Enforced[w].Tokens.Count} enforced tokens; after this prompt a window holds at most {maxTokens}");
        var fallback = job.TemperatureFallback && !replay;
        var ladder = fallback ? TemperatureFallback.Ladder(job.Sampling.Temperature) : [job.Sampling.Temperature];
        // Tokens stream as they are decoded unless a window may still be decoded again: then once it is final.
        var streamLive = !fallback;
        var rules = job.Timestamps ? _timestampRules! : _textRules;
        var pending = windows.Select((w, row) => new WindowRequest(w, row, replay ? job.Enforced![w].Temperature : ladder[0], job.Enforced?[w].Tokens)).ToList();
        while (pending.Count > 0)
        {
            var retry = new List<WindowRequest>();
            foreach (var decoded in _decoder.Decode(encoded, pending, prompt, rules, job.Sampling, maxTokens, streamLive ? onToken : null, ct))
            {
                var result = Result(job, decoded);
                var rung = ladder.ToList().IndexOf(decoded.Request.Temperature);
                if (fallback && rung + 1 < ladder.Count && TemperatureFallback.NeedsFallback(result.AvgLogprob, result.CompressionRatio, result.NoSpeechProb))
                {
                    _logger.LogDebug("Window {Window} at T={Temperature}: avg logprob {AvgLogprob:F2}, compression ratio {Ratio:F2}; trying T={Next}",
                        decoded.Request.Window, decoded.Request.Temperature, result.AvgLogprob, result.CompressionRatio, ladder[rung + 1]);
                    retry.Add(decoded.Request with { Temperature = ladder[rung + 1] });
                    continue;
                }
                results[decoded.Request.Window] = result;
                if (!streamLive && onToken is not null)
                    foreach (var token in result.Tokens) onToken(decoded.Request.Window, token);
            }
            pending = retry;
        }
    }

    private WindowResult Result(SpeechJob job, WindowDecoding decoded)
    {
        var window = job.Windows[decoded.Request.Window];
        var ids = decoded.Tokens.Select(t => t.Token).ToArray();
        var text = _tokenizer.Decode(ids);
        var avgLogprob = TemperatureFallback.AverageLogprob(decoded.RuleLogprobs, decoded.Ended);
        var ratio = TextCompression.Ratio(text);
        // openai's transcribe drops windows it judges silent; with its heuristics asked for, so does this. The tokens
        // stay: they are what the model emitted and what a validator replays.
        if (job.TemperatureFallback && TemperatureFallback.IsSilence(avgLogprob, decoded.NoSpeechProb))
            return new WindowResult(window, decoded.Request.Temperature, decoded.Tokens, "", [], avgLogprob, ratio, decoded.NoSpeechProb);
        IReadOnlyList<SpeechSegment> segments = job.Timestamps
            ? TimestampSegments.Split(ids, _tokenizer.Special.TimestampBegin!.Value, window, _tokenizer.Decode)
            : text.Trim().Length > 0 ? [new SpeechSegment(window.StartSeconds, window.EndSeconds, text, ids)] : [];
        return new WindowResult(window, decoded.Request.Temperature, decoded.Tokens, text, segments, avgLogprob, ratio, decoded.NoSpeechProb);
    }

    /// <summary>openai's language detection: one decoder step on &lt;|startoftranscript|&gt;, the likeliest language token.</summary>
    private string DetectLanguage(Tensor encoded)
    {
        using var scope = NewDisposeScope();
        var special = _tokenizer.Special;
        _cache.Start(1);
        _model.AttendTo(encoded, _cache);
        var logits = _model.Logits(_model.Decode(tensor(new long[] { special.StartOfTranscript }, device: _device).view(1, 1), 0, _cache))[0, 0];
        var candidates = special.Languages.Select(l => (long)l.Id).ToArray();
        var best = (int)candidates[logits.index_select(0, tensor(candidates, device: _device)).argmax().item<long>()];
        var code = special.LanguageCode(best)!;
        _logger.LogDebug("Detected language {Language} (token {Token})", code, best);
        return code;
    }

    /// <summary>Log-mel features of one window, zero-padded to the encoder's 30 s, per-window normalised as HF's extractor does.</summary>
    private Tensor Mel(CanonicalAudio audio, AudioWindow window) =>
        _mel.Window(audio.Samples.AsSpan(window.Start, window.Length), WindowSamples, _device);

    /// <summary>Refuses, before any decoding, what this model cannot do, naming the request field at fault.</summary>
    private void Validate(SpeechJob job)
    {
        var special = _tokenizer.Special;
        if (job.Windows.Count == 0) throw new SpeechJobException("windows", "the job has no windows");
        for (var i = 0; i < job.Windows.Count; i++)
        {
            var w = job.Windows[i];
            if (w.Start < 0 || w.End > job.Audio.Samples.Length || w.Length <= 0)
                throw new SpeechJobException("windows", $"window {i} [{w.Start}, {w.End}) is not a stretch of the {job.Audio.Samples.Length}-sample audio");
            if (w.Length > WindowSamples)
                throw new SpeechJobException("windows", $"window {i} is {w.Length / (double)CanonicalAudio.SampleRate:F2} s; Whisper takes at most {WindowSamples / (double)CanonicalAudio.SampleRate:F0} s");
        }
        if (job.Task == SpeechTask.Translate && !(special.IsMultilingual && special.Translate is not null))
            throw new SpeechJobException("model", "this Whisper cannot translate (English-only model)");
        if (job.Timestamps && _timestampRules is null)
            throw new SpeechJobException("response_format", "this Whisper's vocabulary has no timestamp tokens");
        if (job.Language is { } language && special.IsMultilingual && special.LanguageToken(language) is null)
            throw new SpeechJobException("language", $"language '{language}' is not one of this model's ({string.Join(", ", special.Languages.Select(l => l.Code))})");
        if (job.MaxTokensPerWindow is < 1)
            throw new ArgumentException($"at least one token per window is needed, got {job.MaxTokensPerWindow}", nameof(job));
        if (job.Enforced is { } enforced)
        {
            if (enforced.Count != job.Windows.Count)
                throw new SpeechJobException("windows", $"enforced tokens are given for {enforced.Count} windows, the job has {job.Windows.Count}");
            for (var i = 0; i < enforced.Count; i++)
            {
                var bad = enforced[i].Tokens.Where(t => t < 0 || t >= _model.Config.VocabSize || t == special.EndOfText).ToArray();
                if (bad.Length > 0)
                    throw new SpeechJobException("enforced_tokens", $"window {i} holds {bad[0]}, not a token this model can emit before its end");
                if (enforced[i].Tokens.Count > SampleLength)
                    throw new SpeechJobException("enforced_tokens", $"window {i} has {enforced[i].Tokens.Count} enforced tokens; a window holds at most {SampleLength}");
            }
        }
    }

    public void Dispose()
    {
        _cache.Dispose();
        _textRules.Dispose();
        _timestampRules?.Dispose();
        _gate.Dispose();
    }
}

using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using MLNode.Engines.Asr.Audio;
using MLNode.Engines.Llm.Sampling;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Asr.Whisper;

/// <summary>
/// Runs speech jobs on one loaded Whisper. Jobs that arrive while the model is busy wait, and are then taken together:
/// the windows of all of them go through the encoder up to the cache's capacity at a time and are decoded as one batch
/// (<see cref="WhisperBatchDecoder"/>) when their prompts have the same length and timestamp mode, which lets the
/// batch step in lockstep (prompts may still differ in language and task). Windows that fail openai's quality checks
/// are decoded again at the next temperature of the ladder from the same encoder output. A job without a language
/// detects it on its first window.
/// </summary>
internal sealed class WhisperTranscriber : IAsyncDisposable
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
    private readonly ConcurrentQueue<PendingJob> _waiting = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

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
        // The loop owns the model; it must not inherit the constructing caller's context.
        using (ExecutionContext.SuppressFlow()) _loop = Task.Run(Loop);
    }

    /// <summary>Samples in one window: as many as the encoder's input frames cover (480 000, 30 s).</summary>
    public int WindowSamples => _model.Config.InputFrames * LogMelSpectrogram.HopLength;

    /// <summary>Windows decoded together.</summary>
    public int Slots => _cache.Capacity;

    /// <summary>New tokens per window (openai's sample_len): half the decoder positions, the end token included.</summary>
    private int SampleLength => _model.Config.MaxTargetPositions / 2;

    /// <summary>Refuses at once what this model cannot do (<see cref="SpeechJobException"/>); otherwise the job waits for the model.</summary>
    public Task<SpeechResult> TranscribeAsync(SpeechJob job, Action<int, TokenLogprob>? onToken, CancellationToken ct)
    {
        try
        {
            Validate(job);
        }
        catch (SpeechJobException e)
        {
            return Task.FromException<SpeechResult>(e);
        }
        if (_stop.IsCancellationRequested) return Task.FromException<SpeechResult>(new ObjectDisposedException(nameof(WhisperTranscriber)));
        var pending = new PendingJob(job, onToken, ct);
        _waiting.Enqueue(pending);
        _wake.Release();
        return pending.Completion.Task;
    }

    private async Task Loop()
    {
        while (true)
        {
            try
            {
                await _wake.WaitAsync(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            var jobs = new List<PendingJob>();
            while (_waiting.TryDequeue(out var job)) jobs.Add(job);
            if (jobs.Count == 0) continue;
            try
            {
                Run(jobs);
            }
            catch (Exception e)
            {
                _logger.LogError(e, "Whisper failed {Jobs} job(s)", jobs.Count(j => !j.Completion.Task.IsCompleted));
                foreach (var job in jobs) job.Completion.TrySetException(e);
            }
        }
        while (_waiting.TryDequeue(out var left)) left.Completion.TrySetException(new ObjectDisposedException(nameof(WhisperTranscriber)));
    }

    /// <summary>Decodes every window of <paramref name="jobs"/>, completing each job as its last window is done.</summary>
    private void Run(List<PendingJob> jobs)
    {
        using var noGrad = torch.no_grad();
        using var scope = NewDisposeScope();
        var special = _tokenizer.Special;
        if (!special.IsMultilingual)
            foreach (var job in jobs) job.Language = "en";
        DetectLanguages(jobs.Where(j => j.Language is null && !j.Answered).ToList());
        var ready = jobs.Where(j => !j.Answered && Prepare(j)).ToList();
        // One window of every job before the second of any, so that short jobs finish in the first batch.
        var windows = ready.SelectMany(job => Enumerable.Range(0, job.Job.Windows.Count).Select(w => (Job: job, Window: w)))
            .OrderBy(item => item.Window).ToList();
        foreach (var group in windows.GroupBy(item => (item.Job.Prompt!.Tokens.Count, item.Job.Job.Timestamps)))
            foreach (var batch in group.Chunk(Slots))
            {
                var live = batch.Where(item => !item.Job.Answered).ToArray();
                if (live.Length > 0) DecodeBatch(live, group.Key.Timestamps ? _timestampRules! : _textRules);
                foreach (var job in batch.Select(item => item.Job).Distinct()) job.CompleteIfDone();
            }
        foreach (var job in jobs) job.CompleteIfDone();
    }

    /// <summary>The job's prompt, token budget and temperatures; false (and the job failed) when it cannot run.</summary>
    private bool Prepare(PendingJob job)
    {
        try
        {
            var config = _model.Config;
            var prompt = WhisperPrompt.Build(_tokenizer, job.Job.Prompt, job.Language!, job.Job.Task, job.Job.Timestamps, config.MaxTargetPositions / 2 - 1);
            var maxTokens = Math.Min(Math.Min(job.Job.MaxTokensPerWindow ?? SampleLength, SampleLength), config.MaxTargetPositions - prompt.Tokens.Count);
            for (var w = 0; w < (job.Job.Enforced?.Count ?? 0); w++)
                if (job.Job.Enforced![w].Tokens.Count > maxTokens)
                    throw new SpeechJobException("enforced_tokens", $"window {w} has {job.Job.Enforced[w].Tokens.Count} enforced tokens; after this prompt a window holds at most {maxTokens}");
            (job.Prompt, job.MaxTokens) = (prompt, maxTokens);
            return true;
        }
        catch (SpeechJobException e)
        {
            job.Completion.TrySetException(e);
            return false;
        }
    }

    /// <summary>Windows of one prompt length and timestamp mode, decoded together and again at higher temperatures while openai's checks fail.</summary>
    private void DecodeBatch((PendingJob Job, int Window)[] batch, WhisperLogitRules rules)
    {
        using var scope = NewDisposeScope();
        var encoded = _model.Encode(stack(batch.Select(item => Mel(item.Job.Job.Audio, item.Job.Job.Windows[item.Window])).ToArray()));
        var startOfTranscript = batch[0].Job.Prompt!.StartOfTranscript;
        var pending = batch.Select((item, row) => (Item: item, Request: Request(item.Job, item.Window, row, item.Job.FirstTemperature(item.Window)))).ToList();
        while (pending.Count > 0)
        {
            var decoded = _decoder.Decode(encoded, pending.Select(p => p.Request).ToArray(), startOfTranscript, rules, _stop.Token);
            var retry = new List<((PendingJob Job, int Window) Item, WindowRequest Request)>();
            for (var i = 0; i < pending.Count; i++)
            {
                var (job, window) = pending[i].Item;
                if (job.Answered) continue;
                var temperature = pending[i].Request.Sampling.Temperature;
                var result = Result(job.Job, window, temperature, decoded[i]);
                if (job.NextTemperature(temperature) is { } next && TemperatureFallback.NeedsFallback(result.AvgLogprob, result.CompressionRatio, result.NoSpeechProb))
                {
                    _logger.LogDebug("Window {Window} at T={Temperature}: avg logprob {AvgLogprob:F2}, compression ratio {Ratio:F2}; trying T={Next}",
                        window, temperature, result.AvgLogprob, result.CompressionRatio, next);
                    retry.Add((pending[i].Item, Request(job, window, pending[i].Request.EncoderRow, next)));
                    continue;
                }
                job.Complete(window, result);
            }
            pending = retry;
        }
    }

    /// <summary>
    /// What the decoder needs for one window. Each window samples from its own stream (the job's seed + the window's
    /// index), so that windows of one job are not drawn alike. Tokens stream as they come unless the window may still
    /// be decoded again; then they are handed over once it is final.
    /// </summary>
    private static WindowRequest Request(PendingJob job, int window, int encoderRow, double temperature)
    {
        var sampling = job.Job.Sampling with { Temperature = temperature, Seed = job.Job.Sampling.Seed + window };
        Action<TokenLogprob>? onToken = job.OnToken is not null && !job.MayRetry ? token => job.Stream(window, token) : null;
        return new WindowRequest(encoderRow, job.Prompt!.Tokens, sampling, job.MaxTokens, job.Job.Enforced?[window].Tokens, onToken, () => job.Answered);
    }

    private WindowResult Result(SpeechJob job, int index, double temperature, WindowDecoding decoded)
    {
        var window = job.Windows[index];
        var ids = decoded.Tokens.Select(t => t.Token).ToArray();
        var text = _tokenizer.Decode(ids);
        var avgLogprob = TemperatureFallback.AverageLogprob(decoded.RuleLogprobs, decoded.Ended);
        var ratio = TextCompression.Ratio(text);
        // openai's transcribe drops windows it judges silent; with its heuristics asked for, so does this. The tokens
        // stay: they are what the model emitted and what a validator replays.
        if (job.TemperatureFallback && TemperatureFallback.IsSilence(avgLogprob, decoded.NoSpeechProb))
            return new WindowResult(window, temperature, decoded.Tokens, "", [], avgLogprob, ratio, decoded.NoSpeechProb);
        IReadOnlyList<SpeechSegment> segments = job.Timestamps
            ? TimestampSegments.Split(ids, _tokenizer.Special.TimestampBegin!.Value, window, _tokenizer.Decode)
            : text.Trim().Length > 0 ? [new SpeechSegment(window.StartSeconds, window.EndSeconds, text, ids)] : [];
        return new WindowResult(window, temperature, decoded.Tokens, text, segments, avgLogprob, ratio, decoded.NoSpeechProb);
    }

    /// <summary>
    /// openai's language detection, for each job's first window: one decoder step on &lt;|startoftranscript|&gt;, the
    /// likeliest language token. The first windows of all jobs that need it go through the model together.
    /// </summary>
    private void DetectLanguages(List<PendingJob> jobs)
    {
        var special = _tokenizer.Special;
        var languages = tensor(special.Languages.Select(l => (long)l.Id).ToArray(), device: _device);
        foreach (var batch in jobs.Chunk(Slots))
        {
            using var scope = NewDisposeScope();
            var encoded = _model.Encode(stack(batch.Select(job => Mel(job.Job.Audio, job.Job.Windows[0])).ToArray()));
            _cache.Start(batch.Length);
            _model.AttendTo(encoded, _cache);
            var ids = full(batch.Length, 1, special.StartOfTranscript, ScalarType.Int64, _device);
            var best = _model.Logits(_model.Decode(ids, 0, _cache)).select(1, 0).index_select(1, languages).argmax(1).cpu().data<long>().ToArray();
            for (var i = 0; i < batch.Length; i++)
            {
                batch[i].Language = special.Languages[(int)best[i]].Code;
                _logger.LogDebug("Detected language {Language}", batch[i].Language);
            }
        }
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

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _loop;
        _decoder.Dispose();
        _cache.Dispose();
        _textRules.Dispose();
        _timestampRules?.Dispose();
        _wake.Dispose();
        _stop.Dispose();
    }

    /// <summary>One caller's job while it waits for the model and goes through it.</summary>
    private sealed class PendingJob
    {
        private readonly WindowResult?[] _results;
        private readonly IReadOnlyList<double> _ladder;

        public PendingJob(SpeechJob job, Action<int, TokenLogprob>? onToken, CancellationToken cancellation)
        {
            (Job, OnToken, Language) = (job, onToken, job.Language);
            _results = new WindowResult?[job.Windows.Count];
            _ladder = job.TemperatureFallback && job.Enforced is null ? TemperatureFallback.Ladder(job.Sampling.Temperature) : [job.Sampling.Temperature];
            // A caller that gives up is answered at once, even while the job still waits for the model.
            var registration = cancellation.Register(() => Completion.TrySetCanceled(cancellation));
            Completion.Task.ContinueWith(_ => registration.Dispose(), TaskScheduler.Default);
        }

        public SpeechJob Job { get; }
        public Action<int, TokenLogprob>? OnToken { get; }
        public TaskCompletionSource<SpeechResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public string? Language { get; set; }
        public WhisperPrompt? Prompt { get; set; }
        public int MaxTokens { get; set; }

        /// <summary>Answered already: cancelled by its caller, or failed; its windows need no more work.</summary>
        public bool Answered => Completion.Task.IsCompleted;

        /// <summary>Whether a window may be decoded again at a higher temperature (openai's fallback; never on replay).</summary>
        public bool MayRetry => _ladder.Count > 1;

        public double FirstTemperature(int window) => Job.Enforced?[window].Temperature ?? _ladder[0];

        public double? NextTemperature(double temperature)
        {
            for (var i = 0; i + 1 < _ladder.Count; i++)
                if (_ladder[i] == temperature) return _ladder[i + 1];
            return null;
        }

        /// <summary>Records a window's final result, handing its tokens to the stream when they were held back.</summary>
        public void Complete(int window, WindowResult result)
        {
            _results[window] = result;
            if (MayRetry)
                foreach (var token in result.Tokens) Stream(window, token);
        }

        /// <summary>Hands a token to the caller's stream; a stream that throws fails its own job, not the batch.</summary>
        public void Stream(int window, TokenLogprob token)
        {
            if (OnToken is not { } stream || Answered) return;
            try
            {
                stream(window, token);
            }
            catch (Exception e)
            {
                Completion.TrySetException(e);
            }
        }

        public void CompleteIfDone()
        {
            if (!Answered && _results.All(r => r is not null))
                Completion.TrySetResult(new SpeechResult(Language!, _results!));
        }
    }
}

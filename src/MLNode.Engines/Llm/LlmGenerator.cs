using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using MLNode.Engines.Hosting;
using MLNode.Engines.Layers;
using MLNode.Engines.Llm.Sampling;
using MLNode.Runtime.Native;
using static TorchSharp.torch;

namespace MLNode.Engines.Llm;

public enum FinishReason { Stop, Length, Cancelled }

/// <summary>A sequence to generate: prompt ids, sampling, limits, and (for validator replay) the ids to emit.</summary>
public sealed record GenerationRequest(
    IReadOnlyList<int> Prompt,
    SamplingParams Sampling,
    int MaxTokens,
    IReadOnlySet<int> StopTokens,
    IReadOnlyList<int>? Enforced = null,
    bool IgnoreEos = false);

/// <summary>One generated token; <see cref="Finish"/> is set on the last one.</summary>
public sealed record GeneratedToken(TokenLogprob Token, FinishReason? Finish);

/// <summary>
/// Continuous batching over one model: new sequences are prefilled together as KV-cache slots free up, and every
/// step decodes one token for all running sequences together. One thread owns the model's generation
/// state; callers stream tokens from a channel and may cancel at any time (their slot is freed at the
/// next step). A failing step fails only the sequences in it; the loop keeps serving. The model may be tensor-parallel
/// ranks: each step runs on all of them, and the last rank's logits are sampled.
/// </summary>
public sealed class LlmGenerator : IAsyncDisposable
{
    private readonly RankThreads<LlmRank> _ranks;
    private readonly bool _ownsRanks;
    private readonly KvCache _cache;
    private readonly int _maxBatch;
    private readonly int _prefillTokens;
    private readonly ILogger _logger;
    private readonly ConcurrentQueue<Sequence> _pending = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly List<Sequence> _running = [];

    /// <summary>
    /// Padded tokens one prefill forward may hold by default. Short prompts prefill launch-bound, so batching
    /// them is nearly free, but activations grow with B·L; at 16k tokens a Qwen3-8B-shaped forward's largest
    /// transients are its MLP intermediates, [16k, 12288] in bf16 (~0.4 GB each), and only each row's last
    /// position reaches the LM head, so a burst of long prompts cannot run the GPU out of memory.
    /// </summary>
    public const int DefaultPrefillTokens = 16384;

    /// <summary>Generation with one model and its cache, which the generator owns (not the model).</summary>
    public LlmGenerator(QwenForCausalLM model, KvCache cache, int maxBatch, ILogger logger, int prefillTokens = DefaultPrefillTokens)
        : this(RankThreads<LlmRank>.Inline(new LlmRank(model, cache, logger), r => r.Dispose()), true, maxBatch, logger, prefillTokens)
    {
    }

    /// <summary>
    /// Generation over <paramref name="ranks"/>, each with a cache of the same slots, which its owner disposes after the
    /// generator. Rank 0's cache keeps the account of free slots for all of them.
    /// </summary>
    public LlmGenerator(RankThreads<LlmRank> ranks, int maxBatch, ILogger logger, int prefillTokens = DefaultPrefillTokens)
        : this(ranks, false, maxBatch, logger, prefillTokens)
    {
    }

    private LlmGenerator(RankThreads<LlmRank> ranks, bool ownsRanks, int maxBatch, ILogger logger, int prefillTokens)
    {
        _cache = ranks.Ranks[0].Cache ?? throw new ArgumentException("generation needs ranks with a KV cache", nameof(ranks));
        (_ranks, _ownsRanks, _maxBatch, _logger, _prefillTokens) = (ranks, ownsRanks, Math.Min(maxBatch, _cache.Slots), logger, prefillTokens);
        _loop = Task.Factory.StartNew(Run, TaskCreationOptions.LongRunning).Unwrap();
    }

    /// <summary>Longest prompt + completion a sequence may reach.</summary>
    public int Capacity => _cache.Capacity;

    public int Running => Volatile.Read(ref _runningCount);
    private int _runningCount;

    public ChannelReader<GeneratedToken> Generate(GenerationRequest request, CancellationToken ct)
    {
        if (request.Prompt.Count == 0) throw new ArgumentException("the prompt is empty", nameof(request));
        if (request.Prompt.Count >= Capacity)
            throw new ArgumentException($"the prompt has {request.Prompt.Count} tokens; this model's context is {Capacity}", nameof(request));
        var sequence = new Sequence(request, ct);
        _pending.Enqueue(sequence);
        _wake.Release();
        return sequence.Output.Reader;
    }

    private async Task Run()
    {
        var stopping = _stop.Token;
        while (!stopping.IsCancellationRequested)
        {
            if (_running.Count == 0 && _pending.IsEmpty)
            {
                EmitInFlight();
                try { await _wake.WaitAsync(stopping); }
                catch (OperationCanceledException) { break; }
            }
            Admit();
            if (_running.Count > 0) Step(_running, DecodeAll);
            Volatile.Write(ref _runningCount, _running.Count);
        }
        EmitInFlight();
        foreach (var s in _running.Concat(_pending)) s.Output.Writer.TryComplete(new ObjectDisposedException(nameof(LlmGenerator)));
    }

    /// <summary>
    /// Admits waiting sequences while slots and batch room remain and prefills them together in one forward,
    /// emitting each one's first token. The batch is right-padded to its longest prompt and holds at most
    /// <see cref="_prefillTokens"/> padded tokens (one longer prompt still goes alone); the rest wait a step.
    /// </summary>
    private void Admit()
    {
        var admitted = new List<Sequence>();
        var width = 0;
        while (_running.Count + admitted.Count < _maxBatch && _cache.FreeSlots > 0 && _pending.TryPeek(out var next))
        {
            var wider = Math.Max(width, next.Request.Prompt.Count);
            if (admitted.Count > 0 && (long)(admitted.Count + 1) * wider > _prefillTokens) break;
            _pending.TryDequeue(out _);
            if (next.Cancelled.IsCancellationRequested)
            {
                Cancel(next);
                continue;
            }
            next.Slot = _cache.Acquire();
            admitted.Add(next);
            width = wider;
        }
        if (admitted.Count == 0) return;
        _running.AddRange(admitted);
        Step(admitted, PrefillAll);
        DecodeTimes.Interrupt();
    }

    private void PrefillAll(IReadOnlyList<Sequence> batch)
    {
        using var scope = NewDisposeScope();
        var lengths = batch.Select(s => s.Request.Prompt.Count).ToArray();
        var width = lengths.Max();
        var ids = new long[batch.Count * width]; // padding id 0: real tokens never see it, and it is not stored
        for (var b = 0; b < batch.Count; b++)
            for (var p = 0; p < lengths[b]; p++) ids[b * width + p] = batch[b].Request.Prompt[p];
        var slots = batch.Select(s => s.Slot).ToArray();
        EmitAll(batch, _ranks.RunLast(r => r.Prefill(ids, width, slots, lengths)));
    }

    /// <summary>
    /// One decode step of <paramref name="batch"/>. With one rank holding the model, the step is queued from the previous
    /// step's tokens still on the device, and the host emits that previous step's tokens while the GPU runs this one: the
    /// GPU does not idle while the host reads and emits. A row the token in flight is certain to end (its budget, its
    /// replay, the context) is not stepped again; one that a stop token ends has its extra step discarded. Tensor-parallel
    /// ranks step one at a time (each rank takes the tokens from the host).
    /// </summary>
    private void DecodeAll(IReadOnlyList<Sequence> batch)
    {
        // Only a single rank queues ahead, so with several there is never a step in flight here.
        var ahead = _ranks.Ranks.Count == 1;
        var rows = batch.Where(s => s.InFlightRow < 0 || EndsAt(s, s.Tokens.Count + 1) is null).ToList();
        using var scope = NewDisposeScope();
        var started = Stopwatch.GetTimestamp();
        Tensor? logits = null;
        StepTokens? tokens = null;
        if (rows.Count > 0)
        {
            var slots = rows.Select(s => (long)s.Slot).ToArray();
            var positions = rows.Select(s => (long)(s.Request.Prompt.Count + s.Tokens.Count - 1 + Pending(s))).ToArray();
            var ids = InputIds(rows);
            logits = _ranks.RunLast(r => r.Decode(ids, slots, positions));
            if (ahead)
                tokens = StepTokens.Launch(logits, [.. rows.Select(s => s.Request.Sampling)], [.. rows.Select(s => s.Tokens.Count + Pending(s))],
                    [.. rows.Select(s => s.Request.Enforced is { } e ? e[s.Tokens.Count + Pending(s)] : (int?)null)]);
        }
        var launched = Stopwatch.GetTimestamp();
        if (ahead) EmitInFlight();
        else if (logits is not null) EmitAll(rows, logits);
        if (tokens is not null)
        {
            _inFlight = new StepInFlight(rows, tokens);
            for (var i = 0; i < rows.Count; i++) rows[i].InFlightRow = i;
        }
        DecodeTimes.Add(started, launched, Stopwatch.GetTimestamp());
    }

    /// <summary>A decode step queued on the device whose tokens the host has not emitted yet.</summary>
    private sealed record StepInFlight(IReadOnlyList<Sequence> Batch, StepTokens Tokens);

    private StepInFlight? _inFlight;

    private static int Pending(Sequence s) => s.InFlightRow < 0 ? 0 : 1;

    /// <summary>
    /// This step's input tokens: for the rows of the step in flight, its tokens on the device (no copy when the rows are
    /// the same); for the others, their last emitted token.
    /// </summary>
    private Tensor InputIds(IReadOnlyList<Sequence> rows)
    {
        var emitted = rows.Select(s => s.InFlightRow < 0 ? s.Tokens[^1] : -1L).ToArray();
        if (_inFlight is not { Tokens.Next: var next }) return tensor(emitted);
        var from = rows.Select(s => (long)Math.Max(0, s.InFlightRow)).ToArray();
        var carried = from.Length == next.shape[0] && from.Select((row, i) => row == i).All(same => same)
            ? next
            : next.index_select(0, PinnedUpload.Int64(from, next.device));
        if (emitted.All(id => id < 0)) return carried;
        var known = PinnedUpload.Int64(emitted, next.device);
        return where(known < 0, carried, known);
    }

    /// <summary>Emits the tokens of the step in flight (waiting for their copy); rows ended meanwhile discard theirs.</summary>
    private void EmitInFlight()
    {
        if (_inFlight is not { } step) return;
        _inFlight = null;
        using (step.Tokens)
        {
            foreach (var s in step.Batch) s.InFlightRow = -1;
            var live = step.Batch.Where(s => !s.Done).ToList();
            if (live.Count == 0) return;
            var tokens = step.Tokens.Read();
            for (var i = 0; i < step.Batch.Count; i++)
                if (!step.Batch[i].Done) Emit(step.Batch[i], tokens[i]);
        }
    }

    /// <summary>Where decode steps spend their host time, summed since the generator started (for benchmarks and diagnosis).</summary>
    internal DecodeStepTimes DecodeTimes { get; } = new();

    /// <summary>Runs one forward for <paramref name="batch"/>; on failure fails those sequences (not the loop) and frees their slots.</summary>
    private void Step(IReadOnlyList<Sequence> batch, Action<IReadOnlyList<Sequence>> forward)
    {
        foreach (var s in batch.Where(s => s.Cancelled.IsCancellationRequested).ToList()) Cancel(s);
        var live = batch.Where(s => !s.Done).ToList();
        try
        {
            if (live.Count > 0) forward(live);
        }
        catch (Exception e)
        {
            // The tokens in flight, if any, are lost with the step: their sequences cannot go on without them.
            var inFlight = _inFlight?.Batch ?? [];
            _inFlight?.Tokens.Dispose();
            _inFlight = null;
            var failed = live.Concat(inFlight).Where(s => !s.Done).Distinct().ToList();
            _logger.LogError(e, "Generation step for {Count} sequence(s) failed; they are ended with the error", failed.Count);
            foreach (var s in failed) End(s, e);
        }
        _running.RemoveAll(s => s.Done);
    }

    /// <summary>Samples (or replays) the next token of each sequence from its row of <paramref name="logits"/> [B, V].</summary>
    private void EmitAll(IReadOnlyList<Sequence> batch, Tensor logits)
    {
        var tokens = TokenSampler.NextBatch(logits, batch.Select(s => s.Request.Sampling).ToList(), batch.Select(s => s.Tokens.Count).ToList(),
            batch.Select(s => s.Request.Enforced is { } e ? e[s.Tokens.Count] : (int?)null).ToList());
        for (var i = 0; i < batch.Count; i++) Emit(batch[i], tokens[i]);
    }

    /// <summary>Records the next token of <paramref name="s"/> and decides whether the sequence ends there.</summary>
    private void Emit(Sequence s, TokenLogprob token)
    {
        var enforced = s.Request.Enforced;
        s.Tokens.Add(token.Token);
        FinishReason? finish =
            (!s.Request.IgnoreEos || enforced is not null) && s.Request.StopTokens.Contains(token.Token) ? FinishReason.Stop
            : EndsAt(s, s.Tokens.Count);
        s.Output.Writer.TryWrite(new GeneratedToken(token, finish));
        if (finish is not null) End(s);
    }

    /// <summary>How a sequence ends once it has <paramref name="count"/> tokens, stop tokens aside: its replay, its budget, the context.</summary>
    private FinishReason? EndsAt(Sequence s, int count) =>
        s.Request.Enforced is { } enforced && count == enforced.Count ? FinishReason.Stop
        : count >= s.Request.MaxTokens || s.Request.Prompt.Count + count >= Capacity ? FinishReason.Length
        : null;

    /// <summary>Ends a sequence: frees its slot and closes its stream, with <paramref name="error"/> when it did not finish normally.</summary>
    private void End(Sequence s, Exception? error = null)
    {
        s.Done = true;
        Release(s);
        s.Output.Writer.TryComplete(error);
    }

    private void Cancel(Sequence s) => End(s, new OperationCanceledException(s.Cancelled));

    private void Release(Sequence s)
    {
        if (s.Slot < 0) return;
        _cache.Release(s.Slot);
        s.Slot = -1;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        if (_ownsRanks) _ranks.Dispose();
    }

    private sealed class Sequence(GenerationRequest request, CancellationToken cancelled)
    {
        public GenerationRequest Request { get; } = request;
        public CancellationToken Cancelled { get; } = cancelled;
        public Channel<GeneratedToken> Output { get; } = Channel.CreateUnbounded<GeneratedToken>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        public List<int> Tokens { get; } = [];
        public int Slot { get; set; } = -1;
        public bool Done { get; set; }

        /// <summary>This sequence's row in the step in flight, whose token it has not emitted yet; −1 when none.</summary>
        public int InFlightRow { get; set; } = -1;
    }
}

/// <summary>
/// Host time of the generator's decode steps: preparing and launching the step (until the logits are queued), then
/// sampling and emitting (which starts by waiting for the GPU), and the whole period from one step's start to the next.
/// </summary>
internal sealed class DecodeStepTimes
{
    private long _steps, _periods, _launchTicks, _sampleTicks, _periodTicks, _lastStart;

    public void Add(long started, long launched, long finished)
    {
        _steps++;
        _launchTicks += launched - started;
        _sampleTicks += finished - launched;
        if (_lastStart != 0)
        {
            _periods++;
            _periodTicks += started - _lastStart;
        }
        _lastStart = started;
    }

    /// <summary>A prefill ran since the last decode step: the next period is not a decode period.</summary>
    public void Interrupt() => _lastStart = 0;

    public void Reset() => _steps = _periods = _launchTicks = _sampleTicks = _periodTicks = _lastStart = 0;

    public override string ToString() => _steps < 2 ? "no decode steps" :
        $"steps={_steps} launch_ms={Ms(_launchTicks) / _steps:F3} wait_sample_emit_ms={Ms(_sampleTicks) / _steps:F3} period_ms={Ms(_periodTicks) / Math.Max(1, _periods):F3}";

    private static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
}

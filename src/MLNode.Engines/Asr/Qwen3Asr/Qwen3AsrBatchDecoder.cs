using Microsoft.Extensions.Logging;
using MLNode.Engines.Layers;
using MLNode.Engines.Llm;
using MLNode.Engines.Llm.Sampling;
using static TorchSharp.torch;

namespace MLNode.Engines.Asr.Qwen3Asr;

/// <summary>
/// Decodes the windows of one batch together: one prefill of every prompt (audio embeddings in place), then one decode
/// step per token for the windows still running. Each window samples with its own parameters through
/// <see cref="TokenSampler.NextBatch"/>, or emits its forced tokens (validator replay) and reports this model's logprobs
/// for them. A window ends on a stop token (not emitted) or after its token budget.
/// </summary>
internal sealed class Qwen3AsrBatchDecoder(Qwen3AsrThinker thinker, KvCache cache, IReadOnlySet<int> stopTokens, ILogger logger) : IDisposable
{
    // The LLM engine's step: a CUDA graph per (batch, key span) bucket where the native library allows.
    private readonly LlmDecodeStep _step = new(thinker.TextDecoder, cache, thinker.TextDecoder.parameters().First().device, logger);

    public void Dispose() => _step.Dispose();

    /// <param name="Forced">the tokens to emit instead of sampling, the end of turn included; null to sample.</param>
    public sealed record Row(int[] Prompt, SamplingParams Sampling, int MaxTokens, IReadOnlyList<int>? Forced);

    /// <summary>What one window emitted, and the stop token that ended it with its logprob (null when its budget ran out).</summary>
    public sealed record Decoded(IReadOnlyList<TokenLogprob> Tokens, TokenLogprob? End);

    /// <param name="audio">[Σ tokens, hidden]: the rows the prompts' placeholders take, in row order.</param>
    /// <param name="onToken">called with (row, token) for each emitted token, as it is decoded.</param>
    public IReadOnlyList<Decoded> Run(IReadOnlyList<Row> rows, Tensor audio, Action<int, TokenLogprob>? onToken, CancellationToken ct)
    {
        if (rows.Count > cache.FreeSlots)
            throw new InvalidOperationException($"{rows.Count} windows in one batch, {cache.FreeSlots} free KV-cache slots");
        var slots = rows.Select(_ => cache.Acquire()).ToArray();
        try
        {
            var emitted = rows.Select(_ => new List<TokenLogprob>()).ToArray();
            var ends = new TokenLogprob?[rows.Count];
            var running = Enumerable.Range(0, rows.Count).ToList();
            var device = audio.device;
            using (var scope = NewDisposeScope())
            {
                var step = new PrefillStep(cache, slots, rows.Select(r => r.Prompt.Length).ToArray(), device);
                Emit(running, thinker.Prefill(rows.Select(r => (IReadOnlyList<int>)r.Prompt).ToArray(), audio, step));
            }
            while (running.Count > 0)
            {
                ct.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                var positions = running.Select(i => (long)(rows[i].Prompt.Length + emitted[i].Count - 1)).ToArray();
                Emit(running, _step.Logits(running.Select(i => (long)emitted[i][^1].Token).ToArray(), running.Select(i => (long)slots[i]).ToArray(), positions));
            }
            return rows.Select((_, i) => new Decoded(emitted[i], ends[i])).ToArray();

            // Picks each running row's next token from its logits row and retires the rows that are done.
            void Emit(List<int> batch, Tensor logits)
            {
                var next = TokenSampler.NextBatch(logits, batch.Select(i => rows[i].Sampling).ToList(), batch.Select(i => emitted[i].Count).ToList(),
                    batch.Select(i => rows[i].Forced is { } forced ? forced[emitted[i].Count] : (int?)null).ToList());
                var done = new List<int>();
                for (var b = 0; b < batch.Count; b++)
                {
                    var i = batch[b];
                    if (stopTokens.Contains(next[b].Token))
                    {
                        ends[i] = next[b];
                        done.Add(i);
                        continue;
                    }
                    emitted[i].Add(next[b]);
                    onToken?.Invoke(i, next[b]);
                    if (emitted[i].Count >= rows[i].MaxTokens) done.Add(i);
                }
                batch.RemoveAll(done.Contains);
            }
        }
        finally
        {
            foreach (var slot in slots) cache.Release(slot);
        }
    }
}

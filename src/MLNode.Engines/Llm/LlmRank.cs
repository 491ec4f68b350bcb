using Microsoft.Extensions.Logging;
using MLNode.Engines.Layers;
using static TorchSharp.torch;

namespace MLNode.Engines.Llm;

/// <summary>
/// One tensor-parallel rank of a served Qwen model (all of it when there is one rank): its shard of the weights and,
/// when it generates, its KV cache of its own key/value heads and its decode step. Driven by its own thread through
/// <see cref="Hosting.RankThreads{TRank}"/>; every method takes host arrays (or host tensors) and makes its device tensors itself.
/// </summary>
/// <remarks>Disposing frees the cache and the decode step; the model belongs to whoever built it.</remarks>
public sealed class LlmRank : IDisposable
{
    private readonly LlmDecodeStep? _decode;

    public LlmRank(QwenForCausalLM model, KvCache? cache, ILogger logger)
    {
        (Model, Cache) = (model, cache);
        var weights = model.parameters().First();
        (Device, DType) = (weights.device, weights.dtype);
        _decode = cache is null ? null : new LlmDecodeStep(model, cache, Device, logger);
        _decode?.WarmUp(cache!.Slots);
    }

    public QwenForCausalLM Model { get; }
    public KvCache? Cache { get; }
    public Device Device { get; }
    public ScalarType DType { get; }
    public int Index => Model.Parallel.Rank;

    /// <summary>
    /// Prefills B prompts given as int64 ids [B, <paramref name="width"/>] (row-major, right-padded) into their slots;
    /// float32 logits [B, V] at each prompt's last token.
    /// </summary>
    public Tensor Prefill(long[] ids, int width, int[] slots, int[] lengths)
    {
        using var scope = NewDisposeScope();
        var step = new PrefillStep(RequireCache(), slots, lengths, Device);
        return Model.Prefill(tensor(ids, [lengths.Length, width], device: Device), step).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One new token per sequence at its position; float32 logits [B, V]. <paramref name="ids"/> int64 [B] on the host, or
    /// on this rank's device when they are the previous step's tokens there.
    /// </summary>
    public Tensor Decode(Tensor ids, long[] slots, long[] positions)
    {
        RequireCache();
        return _decode!.Logits(ids, slots, positions);
    }

    /// <summary>Float32 logits [L, V] at every position of one sequence, without the cache (teacher-forced replay).</summary>
    public Tensor LogitsOf(long[] ids)
    {
        using var scope = NewDisposeScope();
        var sequence = tensor(ids, [1, ids.Length], device: Device);
        return Model.Logits(Model.Hidden(Model.Embed(sequence)))[0].MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        _decode?.Dispose();
        Cache?.Dispose();
    }

    private KvCache RequireCache() => Cache ?? throw new InvalidOperationException("this rank was built without a KV cache");
}

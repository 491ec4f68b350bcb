using MLNode.Engines.Layers;
using MLNode.Runtime.Checkpoints;
using MLNode.Runtime.Native;
using TorchSharp;
using TorchSharp.Modules;
using Linear = MLNode.Engines.Layers.Linear;
using static TorchSharp.torch;

namespace MLNode.Engines.Llm;

/// <summary>
/// The Qwen decoder family as HF checkpoints store it: <c>qwen2</c> (bias on q/k/v), <c>qwen3</c>
/// (RMSNorm of q and k per head before RoPE) and <c>qwen3_moe</c> (Qwen3 attention, sparse-MoE
/// feed-forward). Pre-norm blocks with residuals:
/// <code>
///   h   = x + o_proj(attention(rope(q_norm(q(x̂))), rope(k_norm(k(x̂))), v(x̂)))   x̂ = input_layernorm(x)
///   out = h + mlp(post_attention_layernorm(h))                                     mlp = SwiGLU or sparse MoE
/// </code>
/// Module field names are the checkpoint's tensor names, so every parameter loads by its own name. Built for one
/// tensor-parallel rank, it holds that rank's shard: its attention heads, feed-forward features or experts, vocabulary
/// rows (see <see cref="TensorParallel"/>); the residual stream is whole on every rank.
/// </summary>
public sealed class QwenForCausalLM : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly QwenModel model;
    private readonly Linear? lm_head;
#pragma warning restore IDE1006

    /// <param name="prefix">Where the decoder's tensors sit in the checkpoint: "" for an LLM, "thinker" for Qwen3-ASR
    /// (<c>thinker.model.*</c>, <c>thinker.lm_head.*</c>).</param>
    /// <param name="parallel">The tensor-parallel rank to build; the whole model when null.</param>
    public QwenForCausalLM(HfModelConfig config, WeightSource w, string prefix = "", TensorParallel? parallel = null) : base("QwenForCausalLM")
    {
        Config = config;
        Parallel = parallel ?? TensorParallel.Single;
        var at = prefix.Length == 0 ? "" : prefix + ".";
        model = new QwenModel(config, w, $"{at}model", Parallel);
        lm_head = config.TieWordEmbeddings ? null : new ColumnParallelLinear(w, $"{at}lm_head", config.HiddenSize, config.VocabSize, Parallel);
        RegisterComponents();
    }

    public HfModelConfig Config { get; }
    public TensorParallel Parallel { get; }

    /// <summary>Key/value heads this rank attends with: the width of its KV cache.</summary>
    public int KeyValueHeads => (int)Parallel.KeyValueHeads(Config.NumKeyValueHeads, $"{Config.NumKeyValueHeads} key/value heads").Length;
    public int LayerCount => Config.NumHiddenLayers;

    public Tensor Embed(Tensor ids) => model.embed_tokens.forward(ids);

    /// <summary>
    /// Final-norm hidden states [B, L, d] of independent causal sequences whose embeddings are
    /// <paramref name="inputsEmbeds"/> [B, L, d] at positions 0..L−1. <paramref name="afterLayer"/>, when
    /// given, replaces each decoder layer's output (PoC's per-layer reflection).
    /// </summary>
    public Tensor Hidden(Tensor inputsEmbeds, Func<int, Tensor, Tensor>? afterLayer = null) => model.forward(inputsEmbeds, afterLayer, null);

    /// <summary>
    /// Runs B right-padded prompts (int64 [B, L]) at positions 0..L−1, storing their keys and values in their
    /// cache slots; returns the float32 logits [B, V] at each prompt's last token (the LM head runs on those rows only).
    /// </summary>
    public Tensor Prefill(Tensor ids, PrefillStep step)
    {
        using var scope = NewDisposeScope();
        return PrefillEmbeds(Embed(ids), step).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="Prefill"/> from input embeddings [B, L, d] instead of ids, for prompts some of whose positions are
    /// not token embeddings (Qwen3-ASR's audio frames).
    /// </summary>
    public Tensor PrefillEmbeds(Tensor inputsEmbeds, PrefillStep step)
    {
        using var scope = NewDisposeScope();
        var hidden = model.forward(inputsEmbeds, null, step);
        return Logits(hidden.flatten(0, 1).index_select(0, step.Last)).MoveToOuterDisposeScope();
    }

    /// <summary>One new token per sequence (int64 [B]) at its position, reading and extending the cache; float32 logits [B, V].</summary>
    public Tensor Decode(Tensor ids, DecodeStep step)
    {
        using var scope = NewDisposeScope();
        return Logits(model.forward(Embed(ids.unsqueeze(1)), null, step))[TensorIndex.Colon, 0].MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Logits over every row of the checkpoint's LM head (no vocabulary masking), in float32. Each tensor-parallel rank
    /// computes its vocabulary slice and the all-gather gives every rank all of them, so top-k logprobs are exact.
    /// </summary>
    public Tensor Logits(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var logits = lm_head is null ? nn.functional.linear(hidden, model.embed_tokens.Weight) : lm_head.forward(hidden);
        return Parallel.AllGather(logits, -1).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }
}

/// <summary>Embedding, the stack of decoder layers and the final norm.</summary>
public sealed class QwenModel : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    internal readonly VocabParallelEmbedding embed_tokens;
    private readonly ModuleList<QwenDecoderLayer> layers;
    private readonly RmsNorm norm;
#pragma warning restore IDE1006
    private readonly RotaryEmbedding _rope;

    public QwenModel(HfModelConfig config, WeightSource w, string prefix, TensorParallel? parallel = null) : base(prefix)
    {
        parallel ??= TensorParallel.Single;
        embed_tokens = new VocabParallelEmbedding(w, $"{prefix}.embed_tokens", config.VocabSize, config.HiddenSize, parallel);
        layers = new ModuleList<QwenDecoderLayer>(Enumerable.Range(0, config.NumHiddenLayers)
            .Select(i => new QwenDecoderLayer(config, w, $"{prefix}.layers.{i}", i, parallel)).ToArray());
        norm = new RmsNorm(w, $"{prefix}.norm", config.HiddenSize, config.RmsNormEps);
        _rope = new RotaryEmbedding(config.HeadDim, config.RopeTheta, w.Device);
        RegisterComponents();
    }

    public Tensor forward(Tensor x, Func<int, Tensor, Tensor>? afterLayer, KvStep? step)
    {
        using var scope = NewDisposeScope();
        var (cos, sin) = step is DecodeStep decode
            ? PerSequence(_rope.Tables(decode.Positions, x.dtype))
            : PerPosition(_rope.Tables(arange(x.shape[1], ScalarType.Int64, x.device), x.dtype));
        var h = x;
        for (var i = 0; i < layers.Count; i++)
        {
            var next = layers[i].forward(h, cos, sin, step, i);
            if (afterLayer is not null) next = Replace(next, afterLayer(i, next));
            // Free each layer's input as soon as the next exists: a 36-layer PoC batch would otherwise
            // hold every layer's [B, L, d] output until the end of the forward.
            if (!ReferenceEquals(h, x)) h.Dispose();
            h = next;
        }
        return norm.forward(h).MoveToOuterDisposeScope();
    }

    /// <summary>Decode tables [B, D] → [B, 1, 1, D]: one position per sequence, broadcast over heads.</summary>
    private static (Tensor, Tensor) PerSequence((Tensor Cos, Tensor Sin) t) => (t.Cos.view(t.Cos.shape[0], 1, 1, -1), t.Sin.view(t.Sin.shape[0], 1, 1, -1));

    /// <summary>Prefill tables [L, D] → [1, L, 1, D]: one row per position, broadcast over sequences and heads.</summary>
    private static (Tensor, Tensor) PerPosition((Tensor Cos, Tensor Sin) t) => (t.Cos.view(1, t.Cos.shape[0], 1, -1), t.Sin.view(1, t.Sin.shape[0], 1, -1));

    private static Tensor Replace(Tensor old, Tensor replacement)
    {
        if (!ReferenceEquals(old, replacement)) old.Dispose();
        return replacement;
    }
}

public sealed class QwenDecoderLayer : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly RmsNorm input_layernorm;
    private readonly QwenAttention self_attn;
    private readonly RmsNorm post_attention_layernorm;
    private readonly nn.Module<Tensor, Tensor> mlp;
#pragma warning restore IDE1006

    public QwenDecoderLayer(HfModelConfig config, WeightSource w, string prefix, int index, TensorParallel? parallel = null) : base(prefix)
    {
        parallel ??= TensorParallel.Single;
        input_layernorm = new RmsNorm(w, $"{prefix}.input_layernorm", config.HiddenSize, config.RmsNormEps);
        self_attn = new QwenAttention(config, w, $"{prefix}.self_attn", parallel);
        post_attention_layernorm = new RmsNorm(w, $"{prefix}.post_attention_layernorm", config.HiddenSize, config.RmsNormEps);
        mlp = config.IsSparseMoeLayer(index)
            ? new QwenSparseMoe(config, w, $"{prefix}.mlp", parallel)
            : new SwiGlu(w, $"{prefix}.mlp", config.HiddenSize, config.IntermediateSize, parallel);
        RegisterComponents();
    }

    public Tensor forward(Tensor x, Tensor cos, Tensor sin, KvStep? step, int layer)
    {
        using var scope = NewDisposeScope();
        var (h, hNormed) = post_attention_layernorm.AddAndNorm(x, self_attn.forward(input_layernorm.forward(x), cos, sin, step, layer));
        return (h + mlp.forward(hNormed)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Grouped-query causal self-attention with NeoX RoPE; Qwen3 normalises q and k per head first. A tensor-parallel rank
/// attends with its share of the query heads and the key/value heads they use: q/k/v column-parallel, o row-parallel.
/// </summary>
public sealed class QwenAttention : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Linear q_proj;
    private readonly Linear k_proj;
    private readonly Linear v_proj;
    private readonly RowParallelLinear o_proj;
    private readonly RmsNorm? q_norm;
    private readonly RmsNorm? k_norm;
#pragma warning restore IDE1006
    private readonly PackedLinears _qkv;
    private readonly int _heads;
    private readonly int _kvHeads;
    private readonly int _headDim;

    public QwenAttention(HfModelConfig config, WeightSource w, string prefix, TensorParallel? parallel = null) : base(prefix)
    {
        parallel ??= TensorParallel.Single;
        var heads = parallel.Share(config.NumAttentionHeads, $"{prefix}: {config.NumAttentionHeads} attention heads");
        var kvHeads = parallel.KeyValueHeads(config.NumKeyValueHeads, $"{prefix}: {config.NumKeyValueHeads} key/value heads");
        (_heads, _kvHeads, _headDim) = ((int)heads.Length, (int)kvHeads.Length, config.HeadDim);
        var (d, q, kv) = (config.HiddenSize, heads.Total * _headDim, kvHeads.Total * _headDim);
        _qkv = PackedLinears.Load(w, prefix, ["q_proj", "k_proj", "v_proj"], d, [q, kv, kv], config.QkvBias,
            rows: [heads.Along(0, _headDim), kvHeads.Along(0, _headDim), kvHeads.Along(0, _headDim)]);
        (q_proj, k_proj, v_proj) = (_qkv.Layers[0], _qkv.Layers[1], _qkv.Layers[2]);
        o_proj = new RowParallelLinear(w, $"{prefix}.o_proj", q, d, heads.Along(1, _headDim), parallel, config.OutputProjectionBias);
        if (config.ModelType.StartsWith("qwen3", StringComparison.Ordinal))
        {
            q_norm = new RmsNorm(w, $"{prefix}.q_norm", _headDim, config.RmsNormEps);
            k_norm = new RmsNorm(w, $"{prefix}.k_norm", _headDim, config.RmsNormEps);
        }
        RegisterComponents();
    }

    public Tensor forward(Tensor x, Tensor cos, Tensor sin, KvStep? step, int layer)
    {
        using var scope = NewDisposeScope();
        var (batch, length) = (x.shape[0], x.shape[1]);
        var qkv = _qkv.Forward(x);
        if (step is DecodeStep fused && UsesDecodeKernels(qkv, length))
            return o_proj.forward(AttendInCache(qkv, cos, sin, fused, layer).view(batch, 1, _heads * _headDim)).MoveToOuterDisposeScope();
        var projected = _qkv.Split(qkv);
        var q = RotaryEmbedding.Apply(Heads(projected[0], _heads, q_norm, batch, length), cos, sin).transpose(1, 2);
        var k = RotaryEmbedding.Apply(Heads(projected[1], _kvHeads, k_norm, batch, length), cos, sin).transpose(1, 2);
        var v = Heads(projected[2], _kvHeads, null, batch, length).transpose(1, 2);
        Tensor? mask = null;
        switch (step)
        {
            case PrefillStep prefill:
                Store(step.Cache.Keys(layer), k, prefill);
                Store(step.Cache.Values(layer), v, prefill);
                break;
            case DecodeStep decode:
                // Write this token's key/value at each sequence's position, then attend over its whole history.
                TensorIndex[] at = [TensorIndex.Tensor(decode.Slots), TensorIndex.Colon, TensorIndex.Tensor(decode.Positions)];
                step.Cache.Keys(layer).index_put_(k[TensorIndex.Colon, TensorIndex.Colon, 0], at);
                step.Cache.Values(layer).index_put_(v[TensorIndex.Colon, TensorIndex.Colon, 0], at);
                // Narrow before gathering: only the first Span positions of each slot are copied, not its capacity.
                k = step.Cache.Keys(layer).narrow(2, 0, decode.Span).index_select(0, decode.Slots);
                v = step.Cache.Values(layer).narrow(2, 0, decode.Span).index_select(0, decode.Slots);
                mask = (arange(decode.Span, ScalarType.Int64, x.device).unsqueeze(0) <= decode.Positions.unsqueeze(1)).view(batch, 1, 1, decode.Span);
                break;
        }
        Tensor attended;
        if (mask is not null && length == 1)
        {
            // One query per head: the heads sharing a key/value head go in as that head's queries, [B, kv_heads,
            // group, D], so the cache's keys and values are read as they are instead of copied group-fold.
            var grouped = q.reshape(batch, _kvHeads, _heads / _kvHeads, _headDim);
            attended = nn.functional.scaled_dot_product_attention(grouped, k, v, mask).reshape(batch, _heads, 1, _headDim);
        }
        else
        {
            if (_kvHeads != _heads)
            {
                k = k.repeat_interleave(_heads / _kvHeads, dim: 1);
                v = v.repeat_interleave(_heads / _kvHeads, dim: 1);
            }
            attended = mask is null
                ? nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true)
                : nn.functional.scaled_dot_product_attention(q, k, v, mask);
        }
        var merged = attended.transpose(1, 2).reshape(batch, length, _heads * _headDim);
        return o_proj.forward(merged).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One new token per sequence on the GPU: two native kernels do what the eager path's norms, rotations, cache writes,
    /// gathers, mask and SDPA do (same roundings up to the softmax's summation order), reading each sequence's keys and
    /// values where they lie in the cache.
    /// </summary>
    private bool UsesDecodeKernels(Tensor qkv, long length) =>
        length == 1 && NativeKernels.Handles(qkv) && _headDim <= NativeKernels.DecodeAttentionMaxHeadDim && _headDim % 8 == 0
        && _heads / _kvHeads <= NativeKernels.DecodeAttentionMaxGroup;

    private Tensor AttendInCache(Tensor qkv, Tensor cos, Tensor sin, DecodeStep decode, int layer)
    {
        var (keys, values) = (decode.Cache.Keys(layer), decode.Cache.Values(layer));
        var batch = qkv.shape[0];
        var q = NativeKernels.DecodeQkv(qkv.view(batch, -1), q_norm?.Weight, k_norm?.Weight, q_norm?.Eps ?? 0, cos.reshape(batch, _headDim),
            sin.reshape(batch, _headDim), keys, values, decode.Slots, decode.Positions, _heads, _kvHeads);
        return NativeKernels.DecodeAttention(q, keys, values, decode.Slots, decode.Positions, decode.Span);
    }

    /// <summary>Writes the real tokens of <paramref name="kv"/> [B, H, L, D] to their (slot, position); cache rows past each prompt keep what they held.</summary>
    private void Store(Tensor cache, Tensor kv, PrefillStep prefill)
    {
        var tokens = kv.transpose(1, 2).reshape(-1, _kvHeads, _headDim).index_select(0, prefill.Tokens);
        cache.index_put_(tokens, TensorIndex.Tensor(prefill.TokenSlots), TensorIndex.Colon, TensorIndex.Tensor(prefill.TokenPositions));
    }

    /// <summary>[B, L, H·D] → [B, L, H, D], normalising each head where the architecture does.</summary>
    private Tensor Heads(Tensor projected, int heads, RmsNorm? headNorm, long batch, long length)
    {
        var split = projected.view(batch, length, heads, _headDim);
        return headNorm is null ? split : headNorm.forward(split);
    }
}

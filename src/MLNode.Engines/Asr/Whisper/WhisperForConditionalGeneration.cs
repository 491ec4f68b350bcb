using MLNode.Engines.Layers;
using TorchSharp;
using TorchSharp.Modules;
using Conv1d = MLNode.Engines.Layers.Conv1d;
using Embedding = MLNode.Engines.Layers.Embedding;
using LayerNorm = MLNode.Engines.Layers.LayerNorm;
using Linear = MLNode.Engines.Layers.Linear;
using static TorchSharp.torch;

namespace MLNode.Engines.Asr.Whisper;

/// <summary>
/// Whisper as HF checkpoints store it: an encoder over 30 s of log-mel features and a decoder that attends to
/// its own tokens and to the encoder output. Pre-norm residual blocks throughout:
/// <code>
///   encoder:  h = gelu(conv2(gelu(conv1(mel))))ᵀ + embed_positions          conv2 has stride 2: 3000 frames → 1500
///             h = h + self_attn(self_attn_layer_norm(h))                     bidirectional
///             h = h + fc2(gelu(fc1(final_layer_norm(h))))                    × encoder_layers, then layer_norm
///   decoder:  x = embed_tokens(ids) + embed_positions(position)              learned positions
///             x = x + self_attn(self_attn_layer_norm(x))                     causal, over the KV cache
///             x = x + encoder_attn(encoder_attn_layer_norm(x), h)            keys/values of h computed once per window
///             x = x + fc2(gelu(fc1(final_layer_norm(x))))                    × decoder_layers, then layer_norm
///   logits = x · embed_tokensᵀ  (float32)
/// </code>
/// Module field names are the checkpoint's tensor names, so every parameter loads by its own name. GEMMs run in
/// the weights' dtype; LayerNorm and the logits in float32.
/// </summary>
public sealed class WhisperForConditionalGeneration : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly WhisperModel model;
    private readonly Linear? proj_out;
#pragma warning restore IDE1006

    public WhisperForConditionalGeneration(WhisperConfig config, WeightSource w) : base("WhisperForConditionalGeneration")
    {
        Config = config;
        model = new WhisperModel(config, w, "model");
        proj_out = config.TieWordEmbeddings ? null : new Linear(w, "proj_out", config.DModel, config.VocabSize);
        RegisterComponents();
    }

    public WhisperConfig Config { get; }

    /// <summary>The dtype of the weights and activations (LayerNorm and logits aside, which are float32).</summary>
    public ScalarType DType => model.decoder.embed_tokens.Weight.dtype;

    /// <summary>Encoder output [B, source positions, d] of log-mel features [B, mel bins, 2 · source positions].</summary>
    public Tensor Encode(Tensor mel) => model.encoder.forward(mel);

    /// <summary>Computes each decoder layer's cross-attention keys and values of <paramref name="encoderOutput"/> [B, …] into cache rows [0, B).</summary>
    public void AttendTo(Tensor encoderOutput, WhisperKvCache cache) => model.decoder.AttendTo(encoderOutput, cache);

    /// <summary>
    /// Final-norm decoder states [B, L, d] of tokens <paramref name="ids"/> [B, L] at positions start … start + L − 1 of
    /// every live window in <paramref name="cache"/>; their keys and values join the cache. Either a whole prompt
    /// (start 0) or one token per window.
    /// </summary>
    public Tensor Decode(Tensor ids, int start, WhisperKvCache cache)
    {
        if (ids.shape[1] > 1) return model.decoder.forward(ids, start, cache);
        cache.Position.fill_(start);
        return model.decoder.Step(ids, cache);
    }

    /// <summary>
    /// One token per window [B, 1] at the cache's <see cref="WhisperKvCache.Position"/>, to float32 logits [B, V]: the
    /// decoding step, whose shapes do not change from step to step, so it can be captured as a CUDA graph.
    /// </summary>
    internal Tensor StepLogits(Tensor ids, WhisperKvCache cache)
    {
        using var scope = NewDisposeScope();
        return Logits(model.decoder.Step(ids, cache)).select(1, 0).MoveToOuterDisposeScope();
    }

    /// <summary>Logits over the whole vocabulary, in float32.</summary>
    public Tensor Logits(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var logits = proj_out is null ? nn.functional.linear(hidden, model.decoder.embed_tokens.Weight) : proj_out.forward(hidden);
        return logits.to(ScalarType.Float32).MoveToOuterDisposeScope();
    }
}

public sealed class WhisperModel : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    internal readonly WhisperEncoder encoder;
    internal readonly WhisperDecoder decoder;
#pragma warning restore IDE1006

    public WhisperModel(WhisperConfig config, WeightSource w, string prefix) : base(prefix)
    {
        encoder = new WhisperEncoder(config, w, $"{prefix}.encoder");
        decoder = new WhisperDecoder(config, w, $"{prefix}.decoder");
        RegisterComponents();
    }
}

public sealed class WhisperEncoder : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Conv1d conv1;
    private readonly Conv1d conv2;
    private readonly Embedding embed_positions;
    private readonly ModuleList<WhisperEncoderLayer> layers;
    private readonly LayerNorm layer_norm;
#pragma warning restore IDE1006
    private readonly int _frames;

    public WhisperEncoder(WhisperConfig config, WeightSource w, string prefix) : base(prefix)
    {
        var d = config.DModel;
        conv1 = new Conv1d(w, $"{prefix}.conv1", config.NumMelBins, d, kernel: 3, padding: 1);
        conv2 = new Conv1d(w, $"{prefix}.conv2", d, d, kernel: 3, stride: 2, padding: 1);
        // Sinusoidal in released checkpoints, but whatever the checkpoint holds is what the model was trained with.
        embed_positions = new Embedding(w, $"{prefix}.embed_positions", config.MaxSourcePositions, d);
        layers = new ModuleList<WhisperEncoderLayer>(Enumerable.Range(0, config.EncoderLayers)
            .Select(i => new WhisperEncoderLayer(config, w, $"{prefix}.layers.{i}")).ToArray());
        layer_norm = new LayerNorm(w, $"{prefix}.layer_norm", d);
        _frames = config.InputFrames;
        RegisterComponents();
    }

    public override Tensor forward(Tensor mel)
    {
        if (mel.dim() != 3 || mel.shape[2] != _frames)
            throw new ArgumentException($"the encoder takes mel features [B, bins, {_frames}], got [{string.Join(", ", mel.shape)}]", nameof(mel));
        using var scope = NewDisposeScope();
        var x = mel.to(embed_positions.Weight.dtype);
        var h = nn.functional.gelu(conv2.forward(nn.functional.gelu(conv1.forward(x)))).transpose(1, 2) + embed_positions.Weight;
        foreach (var layer in layers) h = layer.forward(h);
        return layer_norm.forward(h).MoveToOuterDisposeScope();
    }
}

public sealed class WhisperEncoderLayer : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly LayerNorm self_attn_layer_norm;
    private readonly WhisperAttention self_attn;
    private readonly LayerNorm final_layer_norm;
    private readonly Linear fc1;
    private readonly Linear fc2;
#pragma warning restore IDE1006

    public WhisperEncoderLayer(WhisperConfig config, WeightSource w, string prefix) : base(prefix)
    {
        var d = config.DModel;
        self_attn_layer_norm = new LayerNorm(w, $"{prefix}.self_attn_layer_norm", d);
        self_attn = new WhisperAttention(w, $"{prefix}.self_attn", d, config.EncoderAttentionHeads);
        final_layer_norm = new LayerNorm(w, $"{prefix}.final_layer_norm", d);
        fc1 = new Linear(w, $"{prefix}.fc1", d, config.EncoderFfnDim, hasBias: true);
        fc2 = new Linear(w, $"{prefix}.fc2", config.EncoderFfnDim, d, hasBias: true);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x + self_attn.forward(self_attn_layer_norm.forward(x));
        h = h + fc2.forward(nn.functional.gelu(fc1.forward(final_layer_norm.forward(h))));
        // transformers clamps float16 activations here so that a long residual stream cannot overflow to inf.
        if (h.dtype == ScalarType.Float16) h = h.clamp(-65504.0 + 1000, 65504.0 - 1000);
        return h.MoveToOuterDisposeScope();
    }
}

public sealed class WhisperDecoder : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    internal readonly Embedding embed_tokens;
    private readonly Embedding embed_positions;
    private readonly ModuleList<WhisperDecoderLayer> layers;
    private readonly LayerNorm layer_norm;
#pragma warning restore IDE1006
    private readonly double _embedScale;

    public WhisperDecoder(WhisperConfig config, WeightSource w, string prefix) : base(prefix)
    {
        var d = config.DModel;
        embed_tokens = new Embedding(w, $"{prefix}.embed_tokens", config.VocabSize, d);
        embed_positions = new Embedding(w, $"{prefix}.embed_positions", config.MaxTargetPositions, d);
        layers = new ModuleList<WhisperDecoderLayer>(Enumerable.Range(0, config.DecoderLayers)
            .Select(i => new WhisperDecoderLayer(config, w, $"{prefix}.layers.{i}")).ToArray());
        layer_norm = new LayerNorm(w, $"{prefix}.layer_norm", d);
        _embedScale = config.ScaleEmbedding ? Math.Sqrt(d) : 1.0;
        RegisterComponents();
    }

    public void AttendTo(Tensor encoderOutput, WhisperKvCache cache)
    {
        for (var i = 0; i < layers.Count; i++) layers[i].AttendTo(encoderOutput, cache, i);
    }

    /// <summary>A whole prompt [B, L] from position 0, causally.</summary>
    public Tensor forward(Tensor ids, int start, WhisperKvCache cache)
    {
        var length = (int)ids.shape[1];
        if (start != 0)
            throw new ArgumentException("a decoder forward of several tokens is a whole prompt from position 0; later tokens go one per step", nameof(start));
        if (length > embed_positions.Weight.shape[0])
            throw new ArgumentException($"a prompt of {length} tokens exceeds the model's {embed_positions.Weight.shape[0]} positions", nameof(ids));
        using var scope = NewDisposeScope();
        var x = Embed(ids) + embed_positions.Weight.narrow(0, 0, length);
        for (var i = 0; i < layers.Count; i++) x = layers[i].forward(x, null, cache, i);
        return layer_norm.forward(x).MoveToOuterDisposeScope();
    }

    /// <summary>One token per window [B, 1] at the cache's position; the positions up to it are visible.</summary>
    public Tensor Step(Tensor ids, WhisperKvCache cache)
    {
        using var scope = NewDisposeScope();
        var step = new WhisperStep(cache.Position, cache.VisibleSlots());
        var x = Embed(ids) + embed_positions.Weight.index_select(0, cache.Position);
        for (var i = 0; i < layers.Count; i++) x = layers[i].forward(x, step, cache, i);
        return layer_norm.forward(x).MoveToOuterDisposeScope();
    }

    private Tensor Embed(Tensor ids)
    {
        var x = embed_tokens.forward(ids);
        return _embedScale == 1.0 ? x : x * _embedScale;
    }
}

/// <summary>Where a one-token decoder step writes its key and value ([1] position) and which cache slots it attends to (a mask over all of them).</summary>
public sealed record WhisperStep(Tensor Position, Tensor Visible);

public sealed class WhisperDecoderLayer : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly LayerNorm self_attn_layer_norm;
    private readonly WhisperAttention self_attn;
    private readonly LayerNorm encoder_attn_layer_norm;
    private readonly WhisperAttention encoder_attn;
    private readonly LayerNorm final_layer_norm;
    private readonly Linear fc1;
    private readonly Linear fc2;
#pragma warning restore IDE1006

    public WhisperDecoderLayer(WhisperConfig config, WeightSource w, string prefix) : base(prefix)
    {
        var d = config.DModel;
        self_attn_layer_norm = new LayerNorm(w, $"{prefix}.self_attn_layer_norm", d);
        self_attn = new WhisperAttention(w, $"{prefix}.self_attn", d, config.DecoderAttentionHeads);
        encoder_attn_layer_norm = new LayerNorm(w, $"{prefix}.encoder_attn_layer_norm", d);
        encoder_attn = new WhisperAttention(w, $"{prefix}.encoder_attn", d, config.DecoderAttentionHeads);
        final_layer_norm = new LayerNorm(w, $"{prefix}.final_layer_norm", d);
        fc1 = new Linear(w, $"{prefix}.fc1", d, config.DecoderFfnDim, hasBias: true);
        fc2 = new Linear(w, $"{prefix}.fc2", config.DecoderFfnDim, d, hasBias: true);
        RegisterComponents();
    }

    public void AttendTo(Tensor encoderOutput, WhisperKvCache cache, int layer) =>
        encoder_attn.StoreKeysValues(encoderOutput, cache.CrossKeys(layer), cache.CrossValues(layer));

    /// <param name="step">null for a prompt from position 0.</param>
    public Tensor forward(Tensor x, WhisperStep? step, WhisperKvCache cache, int layer)
    {
        using var scope = NewDisposeScope();
        var h = x + self_attn.CausalSelfAttention(self_attn_layer_norm.forward(x), step, cache.SelfKeys(layer), cache.SelfValues(layer));
        h = h + encoder_attn.CrossAttention(encoder_attn_layer_norm.forward(h), cache.CrossKeys(layer), cache.CrossValues(layer));
        h = h + fc2.forward(nn.functional.gelu(fc1.forward(final_layer_norm.forward(h))));
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Multi-head attention with scale head_dim^−½; q, v and out projections have biases, k has none. The same weights
/// serve three ways: bidirectional (encoder), causal over a KV cache (decoder), and over precomputed keys and
/// values of the encoder output (cross-attention).
/// </summary>
public sealed class WhisperAttention : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Linear q_proj;
    private readonly Linear k_proj;
    private readonly Linear v_proj;
    private readonly Linear out_proj;
#pragma warning restore IDE1006
    private readonly int _heads;
    private readonly int _headDim;

    public WhisperAttention(WeightSource w, string prefix, int width, int heads) : base(prefix)
    {
        (_heads, _headDim) = (heads, width / heads);
        q_proj = new Linear(w, $"{prefix}.q_proj", width, width, hasBias: true);
        k_proj = new Linear(w, $"{prefix}.k_proj", width, width);
        v_proj = new Linear(w, $"{prefix}.v_proj", width, width, hasBias: true);
        out_proj = new Linear(w, $"{prefix}.out_proj", width, width, hasBias: true);
        RegisterComponents();
    }

    /// <summary>Every position attends to every other (the encoder).</summary>
    public Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var attended = nn.functional.scaled_dot_product_attention(Heads(q_proj.forward(x)), Heads(k_proj.forward(x)), Heads(v_proj.forward(x)));
        return Output(attended).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Tokens store their keys and values in the cache views [B, H, positions, D] and attend to every cached position
    /// up to their own: a whole prompt from position 0 causally (<paramref name="step"/> null), or one token per window
    /// at the step's position, attending over all slots with the later ones masked, so that its shapes are the same at
    /// every step.
    /// </summary>
    public Tensor CausalSelfAttention(Tensor x, WhisperStep? step, Tensor keys, Tensor values)
    {
        using var scope = NewDisposeScope();
        var q = Heads(q_proj.forward(x));
        Tensor attended;
        if (step is null)
        {
            var length = x.shape[1];
            keys.narrow(2, 0, length).copy_(Heads(k_proj.forward(x)));
            values.narrow(2, 0, length).copy_(Heads(v_proj.forward(x)));
            attended = nn.functional.scaled_dot_product_attention(q, keys.narrow(2, 0, length), values.narrow(2, 0, length), is_casual: length > 1);
        }
        else
        {
            keys.index_copy_(2, step.Position, Heads(k_proj.forward(x)));
            values.index_copy_(2, step.Position, Heads(v_proj.forward(x)));
            attended = nn.functional.scaled_dot_product_attention(q, keys, values, step.Visible);
        }
        return Output(attended).MoveToOuterDisposeScope();
    }

    /// <summary>Keys and values of the encoder output [B, S, d] into the cross-attention cache views [B, H, S, D].</summary>
    public void StoreKeysValues(Tensor encoderOutput, Tensor keys, Tensor values)
    {
        using var scope = NewDisposeScope();
        keys.copy_(Heads(k_proj.forward(encoderOutput)));
        values.copy_(Heads(v_proj.forward(encoderOutput)));
    }

    /// <summary>Decoder tokens [B, L, d] attend to the stored keys and values of their window's encoder output.</summary>
    public Tensor CrossAttention(Tensor x, Tensor keys, Tensor values)
    {
        using var scope = NewDisposeScope();
        return Output(nn.functional.scaled_dot_product_attention(Heads(q_proj.forward(x)), keys, values)).MoveToOuterDisposeScope();
    }

    /// <summary>[B, L, H·D] → [B, H, L, D].</summary>
    private Tensor Heads(Tensor projected) => projected.view(projected.shape[0], projected.shape[1], _heads, _headDim).transpose(1, 2);

    /// <summary>[B, H, L, D] → out_proj([B, L, H·D]).</summary>
    private Tensor Output(Tensor attended) =>
        out_proj.forward(attended.transpose(1, 2).reshape(attended.shape[0], attended.shape[2], _heads * _headDim));
}

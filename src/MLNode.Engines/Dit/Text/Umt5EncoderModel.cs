using MLNode.Engines.Layers;
using TorchSharp;
using TorchSharp.Modules;
using Embedding = MLNode.Engines.Layers.Embedding;
using Linear = MLNode.Engines.Layers.Linear;
using static TorchSharp.torch;

namespace MLNode.Engines.Dit.Text;

/// <summary>
/// The umT5 encoder as transformers' <c>UMT5EncoderModel</c> stores it (Wan's text encoder; the official
/// <c>T5Encoder</c> computes the same). Pre-norm blocks with residuals, every norm an RMS norm without mean
/// subtraction (computed in float32):
/// <code>
///   x   = shared(ids)
///   x   = x + o(softmax(q(x̂) k(x̂)ᵀ + bias_l) v(x̂))      x̂ = layer_norm(x); no 1/√d scaling; bias_l from layer l's own buckets
///   x   = x + wo(gelu_tanh(wi_0(x̂)) ⊙ wi_1(x̂))          x̂ = layer_norm(x)
///   out = final_layer_norm(x)
/// </code>
/// Module field names are the checkpoint's tensor names.
/// </summary>
public sealed class Umt5EncoderModel : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Embedding shared;
    private readonly Umt5Stack encoder;
#pragma warning restore IDE1006

    public Umt5EncoderModel(Umt5Config config, WeightSource w) : base("UMT5EncoderModel")
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(w);
        // transformers clamps activations only in float16, which this encoder does not run in.
        if (w.DType == ScalarType.Float16) throw new NotSupportedException("umT5 runs in float32 or bfloat16, not float16");
        Config = config;
        Device = w.Device;
        shared = new Embedding(w, "shared", config.VocabSize, config.DModel);
        encoder = new Umt5Stack(config, w, "encoder");
        RegisterComponents();
    }

    public Umt5Config Config { get; }
    public Device Device { get; }

    /// <summary>Hidden states [B, L, d_model] of B unpadded sequences of token ids (int64 [B, L]).</summary>
    public Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        return encoder.forward(shared.forward(ids)).MoveToOuterDisposeScope();
    }
}

/// <summary>The block stack and the final norm.</summary>
public sealed class Umt5Stack : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly ModuleList<Umt5Block> block;
    private readonly RmsNorm final_layer_norm;
#pragma warning restore IDE1006
    private readonly Umt5Config _config;

    public Umt5Stack(Umt5Config config, WeightSource w, string prefix) : base(prefix)
    {
        _config = config;
        block = new ModuleList<Umt5Block>(Enumerable.Range(0, config.NumLayers)
            .Select(i => new Umt5Block(config, w, $"{prefix}.block.{i}")).ToArray());
        final_layer_norm = new RmsNorm(w, $"{prefix}.final_layer_norm", config.DModel, config.LayerNormEpsilon);
        RegisterComponents();
    }

    public Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        // One bucket table serves every layer; each layer turns it into its own bias.
        var buckets = Umt5Attention.RelativePositionBuckets(
            (int)x.shape[1], _config.RelativeAttentionNumBuckets, _config.RelativeAttentionMaxDistance, x.device);
        var h = x;
        foreach (var layer in block) h = layer.forward(h, buckets);
        return final_layer_norm.forward(h).MoveToOuterDisposeScope();
    }
}

/// <summary><c>layer.0</c> is the self-attention sub-layer, <c>layer.1</c> the feed-forward one.</summary>
public sealed class Umt5Block : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly ModuleList<nn.Module> layer;
#pragma warning restore IDE1006

    public Umt5Block(Umt5Config config, WeightSource w, string prefix) : base(prefix)
    {
        layer = new ModuleList<nn.Module>(
            new Umt5LayerSelfAttention(config, w, $"{prefix}.layer.0"),
            new Umt5LayerFF(config, w, $"{prefix}.layer.1"));
        RegisterComponents();
    }

    public Tensor forward(Tensor x, Tensor buckets)
    {
        using var scope = NewDisposeScope();
        var h = ((Umt5LayerSelfAttention)layer[0]).forward(x, buckets);
        return ((Umt5LayerFF)layer[1]).forward(h).MoveToOuterDisposeScope();
    }
}

public sealed class Umt5LayerSelfAttention : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Umt5Attention SelfAttention;
    private readonly RmsNorm layer_norm;
#pragma warning restore IDE1006

    public Umt5LayerSelfAttention(Umt5Config config, WeightSource w, string prefix) : base(prefix)
    {
        SelfAttention = new Umt5Attention(config, w, $"{prefix}.SelfAttention");
        layer_norm = new RmsNorm(w, $"{prefix}.layer_norm", config.DModel, config.LayerNormEpsilon);
        RegisterComponents();
    }

    public Tensor forward(Tensor x, Tensor buckets)
    {
        using var scope = NewDisposeScope();
        return (x + SelfAttention.forward(layer_norm.forward(x), buckets)).MoveToOuterDisposeScope();
    }
}

public sealed class Umt5LayerFF : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Umt5DenseGatedGelu DenseReluDense;
    private readonly RmsNorm layer_norm;
#pragma warning restore IDE1006

    public Umt5LayerFF(Umt5Config config, WeightSource w, string prefix) : base(prefix)
    {
        DenseReluDense = new Umt5DenseGatedGelu(config, w, $"{prefix}.DenseReluDense");
        layer_norm = new RmsNorm(w, $"{prefix}.layer_norm", config.DModel, config.LayerNormEpsilon);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return (x + DenseReluDense.forward(layer_norm.forward(x))).MoveToOuterDisposeScope();
    }
}

/// <summary>wo(gelu_tanh(wi_0 x) ⊙ wi_1 x): T5 v1.1's gated "gelu_new" feed-forward, without biases.</summary>
public sealed class Umt5DenseGatedGelu : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Linear wi_0;
    private readonly Linear wi_1;
    private readonly Linear wo;
#pragma warning restore IDE1006

    public Umt5DenseGatedGelu(Umt5Config config, WeightSource w, string prefix) : base(prefix)
    {
        wi_0 = new Linear(w, $"{prefix}.wi_0", config.DModel, config.DFf);
        wi_1 = new Linear(w, $"{prefix}.wi_1", config.DModel, config.DFf);
        wo = new Linear(w, $"{prefix}.wo", config.DFf, config.DModel);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var gate = nn.functional.gelu(wi_0.forward(x), GELU.Approximate.tanh);
        return wo.forward(gate * wi_1.forward(x)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Bidirectional self-attention with a learned bias per (relative-position bucket, head) and no score scaling;
/// softmax in float32 as transformers computes it.
/// </summary>
public sealed class Umt5Attention : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Linear q;
    private readonly Linear k;
    private readonly Linear v;
    private readonly Linear o;
    private readonly Embedding relative_attention_bias;
#pragma warning restore IDE1006
    private readonly int _heads;
    private readonly int _headDim;

    public Umt5Attention(Umt5Config config, WeightSource w, string prefix) : base(prefix)
    {
        (_heads, _headDim) = (config.NumHeads, config.DKv);
        q = new Linear(w, $"{prefix}.q", config.DModel, config.InnerDim);
        k = new Linear(w, $"{prefix}.k", config.DModel, config.InnerDim);
        v = new Linear(w, $"{prefix}.v", config.DModel, config.InnerDim);
        o = new Linear(w, $"{prefix}.o", config.InnerDim, config.DModel);
        relative_attention_bias = new Embedding(w, $"{prefix}.relative_attention_bias", config.RelativeAttentionNumBuckets, config.NumHeads);
        RegisterComponents();
    }

    /// <param name="x">Normed hidden states [B, L, d_model].</param>
    /// <param name="buckets">int64 [L, L] relative-position buckets (<see cref="RelativePositionBuckets"/>).</param>
    public Tensor forward(Tensor x, Tensor buckets)
    {
        using var scope = NewDisposeScope();
        var (batch, length) = (x.shape[0], x.shape[1]);
        var (queries, keys, values) = (Heads(q.forward(x)), Heads(k.forward(x)), Heads(v.forward(x)));
        var bias = relative_attention_bias.forward(buckets).permute(2, 0, 1).unsqueeze(0); // [1, H, L, L]
        var scores = queries.matmul(keys.transpose(2, 3)) + bias;
        var weights = scores.to(ScalarType.Float32).softmax(-1).to(scores.dtype);
        var attended = weights.matmul(values).transpose(1, 2).reshape(batch, length, _heads * _headDim);
        return o.forward(attended).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// T5's bidirectional buckets of key position − query position: half the buckets for keys after the query;
    /// within each half, distances below a quarter of the buckets get their own bucket and longer ones share
    /// log-spaced buckets up to the max distance. The log runs in float32, as in transformers and Wan's t5.py.
    /// </summary>
    public static Tensor RelativePositionBuckets(int length, int numBuckets, int maxDistance, Device device)
    {
        var half = numBuckets / 2;
        var maxExact = half / 2;
        var logRange = (float)Math.Log((double)maxDistance / maxExact);
        var buckets = new long[length * length];
        for (var query = 0; query < length; query++)
        {
            for (var key = 0; key < length; key++)
            {
                var relative = key - query;
                var distance = Math.Abs(relative);
                var bucket = relative > 0 ? half : 0;
                if (distance < maxExact)
                {
                    bucket += distance;
                }
                else
                {
                    var logRatio = (float)Math.Log((float)distance / maxExact) / logRange * (half - maxExact);
                    bucket += (int)Math.Min(maxExact + (long)logRatio, half - 1);
                }
                buckets[query * length + key] = bucket;
            }
        }
        return tensor(buckets, [length, length], ScalarType.Int64, device);
    }

    /// <summary>[B, L, H·D] → [B, H, L, D].</summary>
    private Tensor Heads(Tensor projected) => projected.view(projected.shape[0], projected.shape[1], _heads, _headDim).transpose(1, 2);
}

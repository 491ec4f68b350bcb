using MLNode.Engines.Layers;
using TorchSharp;
using TorchSharp.Modules;
using Linear = MLNode.Engines.Layers.Linear;
using LayerNorm = MLNode.Engines.Layers.LayerNorm;
using Conv2d = MLNode.Engines.Layers.Conv2d;
using static TorchSharp.torch;

namespace MLNode.Engines.Asr.Qwen3Asr;

/// <summary>
/// The Qwen3-ASR audio encoder (AuT) as checkpoints store it under <c>thinker.audio_tower</c>. Per audio window:
/// <code>
///   mel [128, T] → chunks of n_window·2 frames (1 s), the last one shorter; each chunk is a 1-channel image [128, 100]
///   x = gelu(conv2d3(gelu(conv2d2(gelu(conv2d1(chunk))))))      [480, 16, 13]: stride 2 thrice in frequency and time
///   x = conv_out(x as [13, 480·16]) + sinusoid[0..13)            positions restart in every chunk
///   tokens = each chunk's valid positions, chunk after chunk       13 per second
///   x = x + self_attn(self_attn_layer_norm(x))                    bidirectional, only within windows of 104 tokens (8 s)
///   x = x + fc2(gelu(fc1(final_layer_norm(x))))                   × encoder_layers
///   out = proj2(gelu(proj1(ln_post(x))))                          → the text decoder's width
/// </code>
/// Several windows run together: their chunks share the convolution batches and their attention windows one batched
/// attention, padded to the longest window with the padding masked as keys; nothing crosses a window boundary.
/// </summary>
public sealed class Qwen3AsrAudioEncoder : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Conv2d conv2d1;
    private readonly Conv2d conv2d2;
    private readonly Conv2d conv2d3;
    private readonly Linear conv_out;
    private readonly ModuleList<Qwen3AsrAudioEncoderLayer> layers;
    private readonly LayerNorm ln_post;
    private readonly Linear proj1;
    private readonly Linear proj2;
#pragma warning restore IDE1006
    private readonly Qwen3AsrAudioConfig _config;
    private readonly ScalarType _dtype;
    private readonly Tensor _sinusoids;

    public Qwen3AsrAudioEncoder(Qwen3AsrAudioConfig config, WeightSource w, string prefix) : base(prefix)
    {
        (_config, _dtype) = (config, w.DType);
        var (channels, d) = (config.DownsampleHiddenSize, config.DModel);
        conv2d1 = new Conv2d(w, $"{prefix}.conv2d1", 1, channels, kernel: 3, stride: 2, padding: 1);
        conv2d2 = new Conv2d(w, $"{prefix}.conv2d2", channels, channels, kernel: 3, stride: 2, padding: 1);
        conv2d3 = new Conv2d(w, $"{prefix}.conv2d3", channels, channels, kernel: 3, stride: 2, padding: 1);
        conv_out = new Linear(w, $"{prefix}.conv_out", channels * config.DownsampledMelBins, d);
        layers = new ModuleList<Qwen3AsrAudioEncoderLayer>(Enumerable.Range(0, config.EncoderLayers)
            .Select(i => new Qwen3AsrAudioEncoderLayer(config, w, $"{prefix}.layers.{i}")).ToArray());
        ln_post = new LayerNorm(w, $"{prefix}.ln_post", d);
        proj1 = new Linear(w, $"{prefix}.proj1", d, d, hasBias: true);
        proj2 = new Linear(w, $"{prefix}.proj2", d, config.OutputDim, hasBias: true);
        _sinusoids = Sinusoids(config.ChunkTokens, d, w.Device).DetachFromDisposeScope();
        RegisterComponents();
    }

    /// <summary>
    /// Embeddings of independent audio windows: <paramref name="mels"/> are [mel bins, frames] each (any float dtype);
    /// the result is [Σ tokens, output_dim] in window order, <see cref="Qwen3AsrAudioConfig.TokensFor"/>(frames) rows per window.
    /// </summary>
    public Tensor forward(IReadOnlyList<Tensor> mels)
    {
        using var scope = NewDisposeScope();
        var frames = mels.Select(m => (int)m.shape[1]).ToArray();
        var stem = ConvStem(mels, out var chunkRows);
        var windows = AttentionWindows.Of(frames, chunkRows, _config, stem.device);
        var x = stem.index_select(0, windows.Gather).view(windows.Count, windows.Width, -1);
        foreach (var layer in layers)
        {
            var next = layer.forward(x, windows.KeyMask);
            x.Dispose();
            x = next;
        }
        x = x.view(-1, x.shape[2]).index_select(0, windows.Scatter);
        return proj2.forward(nn.functional.gelu(proj1.forward(ln_post.forward(x)))).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Every chunk of every window through the convolutions, conv_out and the per-chunk positions: rows [Σ chunks·13, d].
    /// <paramref name="chunkRows"/> gets, per window and chunk, the row of the chunk's first token and its valid token count.
    /// A window shorter than one chunk is its own width, as the reference runs each window alone: its one chunk is not
    /// padded (padding would change what the second and third convolutions see at its edge).
    /// </summary>
    private Tensor ConvStem(IReadOnlyList<Tensor> mels, out (long Row, int Tokens)[][] chunkRows)
    {
        var chunkFrames = _config.ChunkFrames;
        var widths = mels.Select(m => (int)Math.Min(m.shape[1], chunkFrames)).ToArray();
        chunkRows = new (long, int)[mels.Count][];
        var outputs = new List<Tensor>();
        long row = 0;
        foreach (var width in widths.Distinct())
        {
            var members = Enumerable.Range(0, mels.Count).Where(i => widths[i] == width).ToArray();
            var tokensPerChunk = Qwen3AsrAudioConfig.Downsampled(width);
            var images = new List<Tensor>();
            foreach (var i in members)
            {
                var length = (int)mels[i].shape[1];
                var count = (length + width - 1) / width;
                // [mel, T] zero-padded to whole chunks → [chunks, mel, width]
                var padded = nn.functional.pad(mels[i].to(_dtype), [0, count * width - length]);
                images.Add(padded.view(padded.shape[0], count, width).permute(1, 0, 2));
                chunkRows[i] = Enumerable.Range(0, count)
                    .Select(c => (row + (long)c * tokensPerChunk, Qwen3AsrAudioConfig.Downsampled(Math.Min(width, length - c * width))))
                    .ToArray();
                row += (long)count * tokensPerChunk;
            }
            var batch = cat(images, 0).unsqueeze(1);
            foreach (var part in batch.split(_config.ConvChunkSize, 0))
                outputs.Add(ConvChunks(part));
        }
        return cat(outputs, 0);
    }

    /// <summary>Chunks [N, 1, mel, W] → [N·⌈W/8⌉, d]: the convolutions, conv_out over (channel, frequency), positions from 0 per chunk.</summary>
    private Tensor ConvChunks(Tensor chunks)
    {
        var x = nn.functional.gelu(conv2d1.forward(chunks));
        x = nn.functional.gelu(conv2d2.forward(x));
        x = nn.functional.gelu(conv2d3.forward(x));
        var (n, c, f, t) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        x = conv_out.forward(x.permute(0, 3, 1, 2).reshape(n, t, c * f));
        x = x + _sinusoids.narrow(0, 0, t).to(x.dtype);
        return x.flatten(0, 1);
    }

    /// <summary>Whisper's sinusoidal table [length, d]: sin of position × 10000^(−i/(d/2−1)) in the first half, cos in the second.</summary>
    private static Tensor Sinusoids(int length, int channels, Device device)
    {
        using var scope = NewDisposeScope();
        var half = channels / 2;
        var increment = (float)(Math.Log(10000.0) / (half - 1));
        var inverse = (arange(half, ScalarType.Float32, device) * -increment).exp();
        var scaled = arange(length, ScalarType.Float32, device).unsqueeze(1) * inverse.unsqueeze(0);
        return cat([scaled.sin(), scaled.cos()], 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// How the tokens of all windows are packed for attention: each window's tokens cut into runs of
    /// <see cref="Qwen3AsrAudioConfig.AttentionWindowTokens"/>, one batch row per run, padded to the longest run.
    /// </summary>
    private sealed record AttentionWindows(int Count, int Width, Tensor Gather, Tensor Scatter, Tensor? KeyMask)
    {
        /// <param name="chunkRows">per window and chunk: the stem row of the chunk's first token and its valid token count.</param>
        public static AttentionWindows Of(int[] frames, (long Row, int Tokens)[][] chunkRows, Qwen3AsrAudioConfig config, Device device)
        {
            var runs = new List<long[]>();
            for (var i = 0; i < frames.Length; i++)
            {
                var rows = chunkRows[i].SelectMany(c => Enumerable.Range(0, c.Tokens).Select(t => c.Row + t)).ToArray();
                if (rows.Length != config.TokensFor(frames[i]))
                    throw new InvalidOperationException($"window {i}: {rows.Length} tokens from its chunks, {config.TokensFor(frames[i])} expected");
                runs.AddRange(rows.Chunk(config.AttentionWindowTokens));
            }
            var width = runs.Max(r => r.Length);
            var gather = new long[runs.Count * width];
            var scatter = new List<long>();
            var mask = new bool[runs.Count * width];
            for (var r = 0; r < runs.Count; r++)
                for (var p = 0; p < width; p++)
                {
                    var real = p < runs[r].Length;
                    // A padding slot repeats the run's first token; it is masked as a key and its output never read.
                    gather[r * width + p] = runs[r][real ? p : 0];
                    mask[r * width + p] = real;
                    if (real) scatter.Add(r * width + p);
                }
            var padded = runs.Any(r => r.Length < width);
            return new AttentionWindows(runs.Count, width, tensor(gather, device: device), tensor(scatter.ToArray(), device: device),
                padded ? tensor(mask, device: device).view(runs.Count, 1, 1, width) : null);
        }
    }
}

/// <summary>A pre-LN encoder block: bidirectional self-attention, then a GELU feed-forward, each with a residual.</summary>
public sealed class Qwen3AsrAudioEncoderLayer : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly LayerNorm self_attn_layer_norm;
    private readonly Qwen3AsrAudioAttention self_attn;
    private readonly LayerNorm final_layer_norm;
    private readonly Linear fc1;
    private readonly Linear fc2;
#pragma warning restore IDE1006

    public Qwen3AsrAudioEncoderLayer(Qwen3AsrAudioConfig config, WeightSource w, string prefix) : base(prefix)
    {
        self_attn_layer_norm = new LayerNorm(w, $"{prefix}.self_attn_layer_norm", config.DModel);
        self_attn = new Qwen3AsrAudioAttention(config, w, $"{prefix}.self_attn");
        final_layer_norm = new LayerNorm(w, $"{prefix}.final_layer_norm", config.DModel);
        fc1 = new Linear(w, $"{prefix}.fc1", config.DModel, config.EncoderFfnDim, hasBias: true);
        fc2 = new Linear(w, $"{prefix}.fc2", config.EncoderFfnDim, config.DModel, hasBias: true);
        RegisterComponents();
    }

    /// <param name="x">[runs, width, d]: one attention window per row.</param>
    /// <param name="keyMask">bool [runs, 1, 1, width], false on padding; null when no run is padded.</param>
    public Tensor forward(Tensor x, Tensor? keyMask)
    {
        using var scope = NewDisposeScope();
        var h = x + self_attn.forward(self_attn_layer_norm.forward(x), keyMask);
        var y = h + fc2.forward(nn.functional.gelu(fc1.forward(final_layer_norm.forward(h))));
        // The reference keeps float16 activations finite the same way.
        if (y.dtype == ScalarType.Float16) y = y.clamp(-(65504.0 - 1000), 65504.0 - 1000);
        return y.MoveToOuterDisposeScope();
    }
}

/// <summary>Multi-head attention with biases on q, k, v and out, scale head_dim^−½, no causal mask.</summary>
public sealed class Qwen3AsrAudioAttention : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Linear q_proj;
    private readonly Linear k_proj;
    private readonly Linear v_proj;
    private readonly Linear out_proj;
#pragma warning restore IDE1006
    private readonly int _heads;

    public Qwen3AsrAudioAttention(Qwen3AsrAudioConfig config, WeightSource w, string prefix) : base(prefix)
    {
        _heads = config.EncoderAttentionHeads;
        var d = config.DModel;
        q_proj = new Linear(w, $"{prefix}.q_proj", d, d, hasBias: true);
        k_proj = new Linear(w, $"{prefix}.k_proj", d, d, hasBias: true);
        v_proj = new Linear(w, $"{prefix}.v_proj", d, d, hasBias: true);
        out_proj = new Linear(w, $"{prefix}.out_proj", d, d, hasBias: true);
        RegisterComponents();
    }

    public Tensor forward(Tensor x, Tensor? keyMask)
    {
        using var scope = NewDisposeScope();
        var (runs, width, d) = (x.shape[0], x.shape[1], x.shape[2]);
        Tensor Heads(Tensor projected) => projected.view(runs, width, _heads, d / _heads).transpose(1, 2);
        var attended = nn.functional.scaled_dot_product_attention(Heads(q_proj.forward(x)), Heads(k_proj.forward(x)), Heads(v_proj.forward(x)), keyMask);
        return out_proj.forward(attended.transpose(1, 2).reshape(runs, width, d)).MoveToOuterDisposeScope();
    }
}

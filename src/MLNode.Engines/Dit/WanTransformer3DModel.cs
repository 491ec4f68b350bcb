using Microsoft.Extensions.Logging;
using MLNode.Engines.Layers;
using MLNode.Runtime.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using LayerNorm = MLNode.Engines.Layers.LayerNorm;
using Linear = MLNode.Engines.Layers.Linear;
using static TorchSharp.torch;

namespace MLNode.Engines.Dit;

/// <summary>
/// The Wan2.1/2.2 video diffusion transformer (one expert of Wan2.2 A14B, or TI2V-5B's text-to-video path) as diffusers'
/// <c>WanTransformer3DModel</c> stores it, computing what the official <c>WanModel</c> computes. For a latent z
/// [C, F, H, W] at integer timestep t with text context c [L, text_dim], predicting the flow velocity:
/// <code>
///   x        = patch_embedding(z)                                  [N, D], tokens f-major, then h, then w
///   temb     = time_embedder(sinusoid(t))                          [D]       sinusoid = [cos tω, sin tω] in float64
///   e        = time_proj(silu(temb))                               [6, D]
///   ctx      = text_embedder(c)                                    [L, D]
///   per block, with (shift, scale, gate, c_shift, c_scale, c_gate) = scale_shift_table + e:
///     x = x + attn1(norm1(x)·(1 + scale) + shift, rope) · gate      self-attention, q/k RMSNorm across heads, 3-axis RoPE
///     x = x + attn2(norm2(x), ctx)                                  cross-attention, no gate, no mask
///     x = x + ffn(norm3(x)·(1 + c_scale) + c_shift) · c_gate         gelu_tanh MLP
///   (shift, scale) = scale_shift_table + temb
///   v        = unpatchify(proj_out(norm_out(x)·(1 + scale) + shift))   [C_out, F, H, W]
/// </code>
/// <see cref="Hidden"/> stops at norm_out(x) and can replace x after every block: PoC's hook (docs/wan-poc.md).
/// Precision as the official code under bf16 autocast: the projections (patch embedding, text embedding, attention,
/// feed-forward) run in the dtype of the <c>weights</c> source; the residual stream, every LayerNorm, the modulation
/// and gates, the time embedding and the output head run in float32 from the <c>float32Weights</c> source; rotary
/// tables are computed in float64 and applied in float32. With both sources in float32 the whole forward is float32.
/// Module field names are the checkpoint's tensor names.
/// </summary>
public sealed class WanTransformer3DModel : nn.Module
{
    /// <summary>File stem of a diffusers component's weights (<c>diffusion_pytorch_model.safetensors</c>).</summary>
    public const string CheckpointFileStem = "diffusion_pytorch_model";

#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly WanPatchEmbedding patch_embedding;
    private readonly WanTimeTextEmbedding condition_embedder;
    private readonly ModuleList<WanTransformerBlock> blocks;
    private readonly LayerNorm norm_out;
    private readonly Parameter scale_shift_table;
    private readonly Linear proj_out;
#pragma warning restore IDE1006
    private readonly WanRotaryPosEmbed _rope;

    /// <param name="config">The expert's <c>config.json</c>.</param>
    /// <param name="weights">Weights of the projections, in the dtype the matrix products run in (bfloat16 on a GPU).</param>
    /// <param name="float32Weights">The same checkpoint read as float32: modulation tables, norms, time embedding, output head.</param>
    public WanTransformer3DModel(WanTransformerConfig config, WeightSource weights, WeightSource float32Weights) : base("WanTransformer3DModel")
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(float32Weights);
        if (float32Weights.DType != ScalarType.Float32)
            throw new ArgumentException($"the float32 weight source reads {float32Weights.DType}", nameof(float32Weights));
        if (weights.Device != float32Weights.Device)
            throw new ArgumentException($"weights on {weights.Device} and float32 weights on {float32Weights.Device}", nameof(float32Weights));
        Config = config;
        var d = config.InnerDim;
        patch_embedding = new WanPatchEmbedding(config, weights, "patch_embedding");
        condition_embedder = new WanTimeTextEmbedding(config, weights, float32Weights, "condition_embedder");
        blocks = new ModuleList<WanTransformerBlock>(Enumerable.Range(0, config.NumLayers)
            .Select(i => new WanTransformerBlock(config, weights, float32Weights, $"blocks.{i}")).ToArray());
        norm_out = new LayerNorm(float32Weights, "norm_out", d, config.Eps, elementwiseAffine: false);
        scale_shift_table = float32Weights.Parameter("scale_shift_table", 1, 2, d);
        proj_out = new Linear(float32Weights, "proj_out", d, (long)config.OutChannels * config.PatchVolume, hasBias: true);
        _rope = new WanRotaryPosEmbed(config);
        RegisterComponents();
    }

    public WanTransformerConfig Config { get; }

    /// <summary>
    /// Reads a diffusers-layout expert folder (<c>transformer</c> or <c>transformer_2</c>: config.json and
    /// diffusion_pytorch_model safetensors, sharded or not) onto <paramref name="device"/>, the projections in
    /// <paramref name="dtype"/> and the float32 parts in float32.
    /// </summary>
    public static WanTransformer3DModel Load(string folder, Device device, ScalarType dtype, ILogger logger, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(logger);
        cancellationToken.ThrowIfCancellationRequested();
        var config = WanTransformerConfig.FromFile(Path.Combine(folder, "config.json"));
        using var checkpoint = Checkpoint.Open(folder, CheckpointFileStem);
        logger.LogInformation("Reading the Wan transformer ({Layers} blocks, width {Width}, {Heads} heads) from {Folder} onto {Device}, projections in {DType}",
            config.NumLayers, config.InnerDim, config.NumAttentionHeads, folder, device, dtype);
        var model = new WanTransformer3DModel(config, new CheckpointWeights(checkpoint, device, dtype), new CheckpointWeights(checkpoint, device, ScalarType.Float32));
        model.eval();
        return model;
    }

    /// <summary>The velocity [C_out, F, H, W] (float32) of one latent [C, F, H, W] at an integer timestep, with its context [L, text_dim].</summary>
    public Tensor Forward(Tensor latent, int timestep, Tensor context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(latent);
        ArgumentNullException.ThrowIfNull(context);
        using var scope = NewDisposeScope();
        var timesteps = tensor(new long[] { timestep }, device: latent.device);
        return Forward(latent.unsqueeze(0), timesteps, context.unsqueeze(0), cancellationToken)[0].MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The velocities [B, C_out, F, H, W] (float32) of B latents [B, C, F, H, W] at timesteps [B] with contexts
    /// [B, L, text_dim], in one forward: a conditional and an unconditional branch of CFG, or several jobs of one shape.
    /// The contexts are taken as given, padded to a common length by the caller (the official pipeline pads to 512 zero
    /// rows: a padded row still attends, as text_embedder(0)).
    /// </summary>
    public Tensor Forward(Tensor latents, Tensor timesteps, Tensor contexts, CancellationToken cancellationToken = default)
    {
        var grid = CheckInputs(latents, timesteps, contexts);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (temb, timestepProj) = condition_embedder.Time(timesteps);
        var hidden = FinalHidden(latents, grid, timestepProj, contexts, afterBlock: null, cancellationToken);

        var shiftScale = (scale_shift_table + temb.unsqueeze(1)).chunk(2, 1);
        var (shift, scale) = (shiftScale[0], shiftScale[1]);
        var patches = proj_out.forward(addcmul(shift, hidden, scale + 1, 1));
        return Unpatchify(patches, grid).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The final-norm hidden states [B, N, D] (float32): <c>norm_out</c> of the residual stream after the last block,
    /// before the head's timestep modulation. <paramref name="afterBlock"/>, when given, replaces the residual stream
    /// after each block (PoC's per-block reflection); it may update the stream in place and return it.
    /// </summary>
    public Tensor Hidden(Tensor latents, Tensor timesteps, Tensor contexts, Func<int, Tensor, Tensor>? afterBlock, CancellationToken cancellationToken = default)
    {
        var grid = CheckInputs(latents, timesteps, contexts);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (_, timestepProj) = condition_embedder.Time(timesteps);
        return FinalHidden(latents, grid, timestepProj, contexts, afterBlock, cancellationToken).MoveToOuterDisposeScope();
    }

    private Tensor FinalHidden(Tensor latents, TokenGrid grid, Tensor timestepProj, Tensor contexts, Func<int, Tensor, Tensor>? afterBlock,
        CancellationToken cancellationToken)
    {
        var rotations = _rope.Rotations(grid, latents.device);
        var context = condition_embedder.Text(contexts);
        var x = patch_embedding.forward(latents).to(ScalarType.Float32);
        for (var i = 0; i < blocks.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            blocks[i].forward(x, context, timestepProj, rotations);
            if (afterBlock is not null) x = afterBlock(i, x);
        }
        return norm_out.forward(x);
    }

    /// <summary>[B, N, pt·ph·pw·C] → [B, C, F, H, W]: each token's channels-last patch back to its cells (official 'fhwpqrc->cfphqwr').</summary>
    private Tensor Unpatchify(Tensor patches, TokenGrid grid)
    {
        var (pt, ph, pw) = (Config.PatchSize[0], Config.PatchSize[1], Config.PatchSize[2]);
        return patches.view(patches.shape[0], grid.Frames, grid.Height, grid.Width, pt, ph, pw, Config.OutChannels)
            .permute(0, 7, 1, 4, 2, 5, 3, 6)
            .reshape(patches.shape[0], Config.OutChannels, grid.Frames * pt, grid.Height * ph, grid.Width * pw);
    }

    private TokenGrid CheckInputs(Tensor latents, Tensor timesteps, Tensor contexts)
    {
        ArgumentNullException.ThrowIfNull(latents);
        ArgumentNullException.ThrowIfNull(timesteps);
        ArgumentNullException.ThrowIfNull(contexts);
        if (latents.dim() != 5 || latents.shape[1] != Config.InChannels)
            throw new ArgumentException($"latents must be [B, {Config.InChannels}, F, H, W], got [{string.Join(", ", latents.shape)}]", nameof(latents));
        var batch = latents.shape[0];
        if (timesteps.dim() != 1 || timesteps.shape[0] != batch)
            throw new ArgumentException($"timesteps must be [{batch}], one per latent, got [{string.Join(", ", timesteps.shape)}]", nameof(timesteps));
        if (contexts.dim() != 3 || contexts.shape[0] != batch || contexts.shape[2] != Config.TextDim)
            throw new ArgumentException($"contexts must be [{batch}, L, {Config.TextDim}], got [{string.Join(", ", contexts.shape)}]", nameof(contexts));
        var cells = new long[3];
        for (var axis = 0; axis < 3; axis++)
        {
            var size = latents.shape[2 + axis];
            if (size % Config.PatchSize[axis] != 0)
                throw new ArgumentException($"latent size {size} on axis {"FHW"[axis]} is not a multiple of the patch size {Config.PatchSize[axis]}", nameof(latents));
            cells[axis] = size / Config.PatchSize[axis];
            if (cells[axis] > Config.RopeMaxSeqLen)
                throw new ArgumentException($"{cells[axis]} tokens on axis {"FHW"[axis]} exceed the rotary tables' {Config.RopeMaxSeqLen} positions", nameof(latents));
        }
        return new TokenGrid(cells[0], cells[1], cells[2]);
    }
}

/// <summary>Tokens per axis after patching: the RoPE positions and the unpatchify shape.</summary>
internal readonly record struct TokenGrid(long Frames, long Height, long Width)
{
    public long Tokens => Frames * Height * Width;
}

/// <summary>
/// The official Conv3d with kernel = stride = patch, computed as what it is: one linear map of each patch's
/// C·pt·ph·pw cells (in the kernel's (c, t, h, w) order) to the model width.
/// </summary>
public sealed class WanPatchEmbedding : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Parameter weight;
    private readonly Parameter bias;
#pragma warning restore IDE1006
    private readonly IReadOnlyList<int> _patch;

    public WanPatchEmbedding(WanTransformerConfig config, WeightSource w, string prefix) : base(prefix)
    {
        _patch = config.PatchSize;
        weight = w.Parameter($"{prefix}.weight", config.InnerDim, config.InChannels, _patch[0], _patch[1], _patch[2]);
        bias = w.Parameter($"{prefix}.bias", config.InnerDim);
        RegisterComponents();
    }

    /// <summary>Latents [B, C, F, H, W] → tokens [B, N, D] in the weights' dtype, f-major, then h, then w.</summary>
    public override Tensor forward(Tensor latents)
    {
        using var scope = NewDisposeScope();
        var (b, c, f, h, w) = (latents.shape[0], latents.shape[1], latents.shape[2], latents.shape[3], latents.shape[4]);
        var (pt, ph, pw) = (_patch[0], _patch[1], _patch[2]);
        var patches = latents.to(weight.dtype)
            .view(b, c, f / pt, pt, h / ph, ph, w / pw, pw)
            .permute(0, 2, 4, 6, 1, 3, 5, 7)
            .reshape(b, f / pt * (h / ph) * (w / pw), c * pt * ph * pw);
        return nn.functional.linear(patches, weight.flatten(1), bias).MoveToOuterDisposeScope();
    }
}

/// <summary>The conditioning: the timestep's embedding and modulation, and the text context's projection to the model width.</summary>
public sealed class WanTimeTextEmbedding : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly WanTwoLayerMlp time_embedder;
    private readonly Linear time_proj;
    private readonly WanTwoLayerMlp text_embedder;
#pragma warning restore IDE1006
    private readonly int _freqDim;
    private readonly int _width;

    public WanTimeTextEmbedding(WanTransformerConfig config, WeightSource w, WeightSource float32Weights, string prefix) : base(prefix)
    {
        (_freqDim, _width) = (config.FreqDim, config.InnerDim);
        time_embedder = new WanTwoLayerMlp(float32Weights, $"{prefix}.time_embedder", config.FreqDim, config.InnerDim, WanTwoLayerMlp.Activation.Silu);
        time_proj = new Linear(float32Weights, $"{prefix}.time_proj", config.InnerDim, 6L * config.InnerDim, hasBias: true);
        text_embedder = new WanTwoLayerMlp(w, $"{prefix}.text_embedder", config.TextDim, config.InnerDim, WanTwoLayerMlp.Activation.GeluTanh);
        RegisterComponents();
    }

    /// <summary>
    /// temb [B, D] and the block modulation [B, 6, D], float32, of timesteps [B]. One vector per sample: the official
    /// code expands t to every token, which for text-to-video repeats the same vector N times.
    /// </summary>
    public (Tensor Temb, Tensor TimestepProj) Time(Tensor timesteps)
    {
        using var scope = NewDisposeScope();
        var temb = time_embedder.forward(Sinusoid(timesteps));
        var projection = time_proj.forward(nn.functional.silu(temb)).view(-1, 6, _width);
        return (temb.MoveToOuterDisposeScope(), projection.MoveToOuterDisposeScope());
    }

    /// <summary>Contexts [B, L, text_dim] → [B, L, D] in the projections' dtype.</summary>
    public Tensor Text(Tensor contexts) => text_embedder.forward(contexts);

    /// <summary>
    /// [cos(t·ω_i), sin(t·ω_i)] with ω_i = 10000^(−i/half), i = 0…half−1, computed in float64 and rounded to float32
    /// (official <c>sinusoidal_embedding_1d</c>; diffusers' float32 <c>Timesteps</c> rounds t·ω first).
    /// </summary>
    private Tensor Sinusoid(Tensor timesteps)
    {
        using var scope = NewDisposeScope();
        var half = _freqDim / 2;
        var frequencies = pow(10000.0, -arange(half, ScalarType.Float64, timesteps.device) / half);
        var angles = outer(timesteps.to(ScalarType.Float64), frequencies);
        return cat([angles.cos(), angles.sin()], 1).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }
}

/// <summary>linear_2(act(linear_1(x))): diffusers' <c>TimestepEmbedding</c> (SiLU) and <c>PixArtAlphaTextProjection</c> (tanh GELU).</summary>
public sealed class WanTwoLayerMlp : nn.Module<Tensor, Tensor>
{
    public enum Activation { Silu, GeluTanh }

#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Linear linear_1;
    private readonly Linear linear_2;
#pragma warning restore IDE1006
    private readonly Activation _activation;
    private readonly ScalarType _dtype;

    public WanTwoLayerMlp(WeightSource w, string prefix, long inFeatures, long width, Activation activation) : base(prefix)
    {
        linear_1 = new Linear(w, $"{prefix}.linear_1", inFeatures, width, hasBias: true);
        linear_2 = new Linear(w, $"{prefix}.linear_2", width, width, hasBias: true);
        (_activation, _dtype) = (activation, w.DType);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = linear_1.forward(x.to(_dtype));
        h = _activation == Activation.Silu ? nn.functional.silu(h) : nn.functional.gelu(h, GELU.Approximate.tanh);
        return linear_2.forward(h).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// One block: gated self-attention and feed-forward, both modulated by the timestep, with an ungated cross-attention
/// between them. Diffusers' <c>norm2</c> is the official <c>norm3</c> (the affine cross-attention norm) and vice versa.
/// </summary>
public sealed class WanTransformerBlock : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly LayerNorm norm1;
    private readonly WanAttention attn1;
    private readonly LayerNorm? norm2;
    private readonly WanAttention attn2;
    private readonly LayerNorm norm3;
    private readonly WanFeedForward ffn;
    private readonly Parameter scale_shift_table;
#pragma warning restore IDE1006

    public WanTransformerBlock(WanTransformerConfig config, WeightSource w, WeightSource float32Weights, string prefix) : base(prefix)
    {
        var d = config.InnerDim;
        norm1 = new LayerNorm(float32Weights, $"{prefix}.norm1", d, config.Eps, elementwiseAffine: false);
        attn1 = new WanAttention(config, w, $"{prefix}.attn1");
        norm2 = config.CrossAttnNorm ? new LayerNorm(float32Weights, $"{prefix}.norm2", d, config.Eps) : null;
        attn2 = new WanAttention(config, w, $"{prefix}.attn2");
        norm3 = new LayerNorm(float32Weights, $"{prefix}.norm3", d, config.Eps, elementwiseAffine: false);
        ffn = new WanFeedForward(config, w, $"{prefix}.ffn");
        scale_shift_table = float32Weights.Parameter($"{prefix}.scale_shift_table", 1, 6, d);
        RegisterComponents();
    }

    /// <summary>
    /// Adds the block's three residual branches to <paramref name="x"/> in place, each branch's temporaries freed before
    /// the next runs: at 720p a residual stream is 1.5 GB per sample, and a new one per branch would hold several.
    /// </summary>
    /// <param name="x">The float32 residual stream [B, N, D].</param>
    /// <param name="context">The projected text context [B, L, D].</param>
    /// <param name="timestepProj">The float32 modulation [B, 6, D].</param>
    /// <param name="rotations">The tokens' rotary factors (complex64 [1, N, 1, head_dim/2]).</param>
    public void forward(Tensor x, Tensor context, Tensor timestepProj, Tensor rotations)
    {
        using var scope = NewDisposeScope();
        var e = (scale_shift_table + timestepProj).chunk(6, 1);
        var (shift, scale, gate, cShift, cScale, cGate) = (e[0], e[1], e[2], e[3], e[4], e[5]);

        Residual(x, () => attn1.forward(addcmul(shift, norm1.forward(x), scale + 1, 1), null, rotations), gate);
        Residual(x, () => attn2.forward(norm2?.forward(x) ?? x, context, null), gate: null);
        Residual(x, () => ffn.forward(addcmul(cShift, norm3.forward(x), cScale + 1, 1)), cGate);
    }

    /// <summary>x += branch() · gate (float32), in place.</summary>
    private static void Residual(Tensor x, Func<Tensor> branch, Tensor? gate)
    {
        using var scope = NewDisposeScope();
        var y = branch();
        if (gate is null) x.add_(y);
        else x.addcmul_(y, gate, 1);
    }
}

/// <summary>
/// Multi-head attention with biased projections and q/k RMSNorm over all heads' channels before the split into heads
/// (eps from the config). Self-attention rotates q and k by the 3-axis RoPE; cross-attention attends over every context
/// row unmasked. Softmax scale 1/√head_dim, not causal; scaled_dot_product_attention picks the fused kernel.
/// </summary>
public sealed class WanAttention : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Linear to_q;
    private readonly Linear to_k;
    private readonly Linear to_v;
    private readonly ModuleList<Linear> to_out;
    private readonly RmsNorm norm_q;
    private readonly RmsNorm norm_k;
#pragma warning restore IDE1006
    private readonly int _heads;
    private readonly int _headDim;
    private readonly ScalarType _dtype;

    public WanAttention(WanTransformerConfig config, WeightSource w, string prefix) : base(prefix)
    {
        (_heads, _headDim, _dtype) = (config.NumAttentionHeads, config.AttentionHeadDim, w.DType);
        var d = config.InnerDim;
        to_q = new Linear(w, $"{prefix}.to_q", d, d, hasBias: true);
        to_k = new Linear(w, $"{prefix}.to_k", d, d, hasBias: true);
        to_v = new Linear(w, $"{prefix}.to_v", d, d, hasBias: true);
        to_out = new ModuleList<Linear>(new Linear(w, $"{prefix}.to_out.0", d, d, hasBias: true));
        norm_q = new RmsNorm(w, $"{prefix}.norm_q", d, config.Eps);
        norm_k = new RmsNorm(w, $"{prefix}.norm_k", d, config.Eps);
        RegisterComponents();
    }

    /// <param name="x">Queries' input [B, N, D] (any float dtype; projected in the weights' dtype).</param>
    /// <param name="context">Keys' and values' input [B, L, D] for cross-attention; null for self-attention over x.</param>
    /// <param name="rotations">Rotary factors for self-attention, null for cross-attention.</param>
    /// <returns>[B, N, D] in the weights' dtype.</returns>
    public Tensor forward(Tensor x, Tensor? context, Tensor? rotations)
    {
        using var scope = NewDisposeScope();
        var queriesFrom = x.to(_dtype);
        var keysFrom = context?.to(_dtype) ?? queriesFrom;
        var q = Heads(to_q, norm_q, queriesFrom, rotations);
        var k = Heads(to_k, norm_k, keysFrom, rotations);
        var v = Heads(to_v, null, keysFrom, null);
        var attended = nn.functional.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2));
        return to_out[0].forward(attended.transpose(1, 2).flatten(2)).MoveToOuterDisposeScope();
    }

    /// <summary>[B, L, D] → projected, normalised across heads, split to [B, L, H, d] and rotated where given; temporaries freed.</summary>
    private Tensor Heads(Linear projection, RmsNorm? norm, Tensor input, Tensor? rotations)
    {
        using var scope = NewDisposeScope();
        var projected = projection.forward(input);
        if (norm is not null) projected = norm.forward(projected);
        var heads = projected.view(projected.shape[0], projected.shape[1], _heads, _headDim);
        if (rotations is not null) heads = WanRotaryPosEmbed.Apply(heads, rotations);
        return heads.MoveToOuterDisposeScope();
    }
}

/// <summary>net.2(gelu_tanh(net.0.proj(x))): diffusers' <c>FeedForward</c> with "gelu-approximate" (net.1 is its dropout).</summary>
public sealed class WanFeedForward : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Sequential net;
#pragma warning restore IDE1006
    private readonly ScalarType _dtype;

    public WanFeedForward(WanTransformerConfig config, WeightSource w, string prefix) : base(prefix)
    {
        _dtype = w.DType;
        net = nn.Sequential(
            ("0", new WanGeluTanhProjection(w, $"{prefix}.net.0", config.InnerDim, config.FfnDim)),
            ("2", new Linear(w, $"{prefix}.net.2", config.FfnDim, config.InnerDim, hasBias: true)));
        RegisterComponents();
    }

    /// <summary>x [B, N, D] (any float dtype) → [B, N, D] in the weights' dtype.</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return net.forward(x.to(_dtype)).MoveToOuterDisposeScope();
    }
}

/// <summary>gelu_tanh(proj(x)): diffusers' <c>GELU(approximate="tanh")</c> module with its projection.</summary>
public sealed class WanGeluTanhProjection : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Linear proj;
#pragma warning restore IDE1006

    public WanGeluTanhProjection(WeightSource w, string prefix, long inFeatures, long outFeatures) : base(prefix)
    {
        proj = new Linear(w, $"{prefix}.proj", inFeatures, outFeatures, hasBias: true);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return nn.functional.gelu(proj.forward(x), GELU.Approximate.tanh).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Wan's 3-axis rotary embedding. The head's channel pairs (2j, 2j+1) are complex numbers; with c = head_dim/2 pairs,
/// the first c − 2⌊c/3⌋ rotate by the token's frame index, the next ⌊c/3⌋ by its row, the last ⌊c/3⌋ by its column
/// (positions on the patch grid, from 0). Each axis has its own frequencies ω_j = 10000^(−2j/dim_axis) over its
/// dim_axis = 2·pairs channels. Angles and their cos/sin in float64 (official <c>rope_params</c>), rounded to float32.
/// </summary>
internal sealed class WanRotaryPosEmbed
{
    private const double Theta = 10000.0;

    private readonly int[] _pairs;

    public WanRotaryPosEmbed(WanTransformerConfig config)
    {
        var c = config.AttentionHeadDim / 2;
        _pairs = [c - 2 * (c / 3), c / 3, c / 3];
    }

    /// <summary>cos θ + i sin θ (complex64 [1, N, 1, head_dim/2]) of every token of the grid, f-major, then h, then w.</summary>
    public Tensor Rotations(TokenGrid grid, Device device)
    {
        using var scope = NewDisposeScope();
        long[] counts = [grid.Frames, grid.Height, grid.Width];
        var perAxis = new Tensor[3];
        for (var axis = 0; axis < 3; axis++)
        {
            var dimAxis = 2 * _pairs[axis];
            var frequencies = 1.0 / pow(Theta, arange(0, dimAxis, 2, ScalarType.Float64, device) / dimAxis);
            var angles = outer(arange(counts[axis], ScalarType.Float64, device), frequencies);
            long[] at = [1, 1, 1, _pairs[axis]];
            at[axis] = counts[axis];
            perAxis[axis] = angles.view(at).expand(grid.Frames, grid.Height, grid.Width, _pairs[axis]);
        }
        var table = cat(perAxis, -1).reshape(1, grid.Tokens, 1, -1);
        return complex(table.cos().to(ScalarType.Float32), table.sin().to(ScalarType.Float32)).MoveToOuterDisposeScope();
    }

    /// <summary>x [B, N, H, d] rotated pair by pair, (a + ib)·(cos θ + i sin θ) in complex64; returned in x's dtype.</summary>
    public static Tensor Apply(Tensor x, Tensor rotations)
    {
        using var scope = NewDisposeScope();
        var pairs = view_as_complex(x.to(ScalarType.Float32).contiguous().view([.. x.shape[..^1], x.shape[^1] / 2, 2]));
        return view_as_real(pairs * rotations).flatten(-2).to(x.dtype).MoveToOuterDisposeScope();
    }
}

using Microsoft.Extensions.Logging;
using MLNode.Engines.Layers;
using MLNode.Runtime.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using Conv2d = MLNode.Engines.Layers.Conv2d;
using static TorchSharp.torch;

namespace MLNode.Engines.Dit.Vae;

/// <summary>
/// The decoding half of the Wan2.1 VAE (Wan2.2-T2V-A14B's), as diffusers' <c>AutoencoderKLWan</c> stores it and the
/// official <c>WanVAE_.decode</c> runs it, in float32 (the official precision policy for the VAE):
/// <code>
///   z     = latent / (1/std) + mean                    the DiT's normalised latent back to the VAE's scale
///   x     = post_quant_conv(z)                         1×1×1
///   for each latent frame x_t, with every causal conv remembering its last two input frames (WanCausalCache):
///     h   = conv_in(x_t)
///     h   = mid_block(h)                               resnet → attention over each frame's H·W → resnet
///     h   = up_blocks(h)                               resnets, then ×2 in H and W, and ×2 in time for "upsample3d"
///     y_t = conv_out(silu(norm_out(h)))                (the first latent frame is not doubled in time)
///   video = clamp(y_0 ‖ y_1 ‖ …, −1, 1)                [3, 1 + 4·(T−1), 8h, 8w] for the released config
/// </code>
/// Module field names are the checkpoint's tensor names. On a GPU the convolutions run in true float32: PyTorch's
/// default lets cuDNN use TF32 (10-bit mantissa) for them, which moves pixels by ~1e-3 and depends on the algorithm
/// cuDNN picks per GPU, so decoding turns cuDNN's TF32 off (a process-wide libtorch switch; spec §8, no TF32 in the VAE).
/// </summary>
public sealed class WanVaeDecoder : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly WanCausalConv3d post_quant_conv;
    private readonly WanDecoder3d decoder;
#pragma warning restore IDE1006
    private readonly Tensor _mean;
    private readonly Tensor _inverseStd;

    public WanVaeDecoder(WanVaeConfig config, WeightSource w) : base("AutoencoderKLWan")
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(w);
        if (w.DType != ScalarType.Float32) throw new NotSupportedException($"the Wan VAE decodes in float32, not {w.DType}");
        Config = config;
        Device = w.Device;
        post_quant_conv = new WanCausalConv3d(w, "post_quant_conv", config.ZDim, config.ZDim, kernel: 1);
        decoder = new WanDecoder3d(config, w, "decoder");
        // The reference keeps 1/std as a float32 tensor and divides by it; so does this, for the same bits.
        _mean = Channels(config.LatentsMean.Select(m => (float)m));
        _inverseStd = Channels(config.LatentsStd.Select(s => 1f / (float)s));
        RegisterComponents();
    }

    public WanVaeConfig Config { get; }
    public Device Device { get; }

    /// <summary>Video frames decoded from <paramref name="latentFrames"/> latent frames: the first gives one, every later one gives <see cref="WanDecoder3d.TemporalScale"/>.</summary>
    public long VideoFrames(long latentFrames) => 1 + decoder.TemporalScale * (latentFrames - 1);

    /// <summary>Reads a diffusers-layout <c>vae</c> folder (<c>config.json</c>, <c>diffusion_pytorch_model.safetensors</c>) onto <paramref name="device"/>.</summary>
    public static WanVaeDecoder Load(string vaeFolder, Device device, ILogger logger, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(logger);
        cancellationToken.ThrowIfCancellationRequested();
        var config = WanVaeConfig.FromFile(Path.Combine(vaeFolder, "config.json"));
        using var checkpoint = Checkpoint.Open(vaeFolder, "diffusion_pytorch_model");
        logger.LogInformation("Reading the Wan VAE decoder (z_dim {ZDim}, base dim {Dim}) from {Folder} onto {Device} as float32",
            config.ZDim, config.DecoderBaseDim, vaeFolder, device);
        if (device.type == DeviceType.CUDA && backends.cudnn.allow_tf32)
            logger.LogInformation("Decoding will turn cuDNN's TF32 convolutions off for this process: the Wan VAE decodes in true float32");
        var vae = new WanVaeDecoder(config, new CheckpointWeights(checkpoint, device, ScalarType.Float32));
        vae.eval();
        return vae;
    }

    /// <summary>
    /// Decodes a normalised latent [z_dim, T, h, w] (the sampler's output) into a float32 video [3, F, H, W] in [−1, 1],
    /// one latent frame at a time so that only one chunk's activations are alive; the frames are written into the
    /// output as they come.
    /// </summary>
    public Tensor Decode(Tensor latent, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(latent);
        if (latent.dim() != 4 || latent.shape[0] != Config.ZDim)
            throw new ArgumentException($"expected a latent [{Config.ZDim}, T, h, w], got [{string.Join(", ", latent.shape)}]", nameof(latent));
        if (latent.dtype != ScalarType.Float32) throw new ArgumentException($"the latent must be float32, got {latent.dtype}", nameof(latent));

        if (Device.type == DeviceType.CUDA) backends.cudnn.allow_tf32 = false;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var latentFrames = latent.shape[1];
        var z = latent.to(Device).unsqueeze(0) / _inverseStd + _mean;
        var x = post_quant_conv.forward(z, cache: null);
        var video = empty([Config.OutChannels, VideoFrames(latentFrames), latent.shape[2] * decoder.SpatialScale, latent.shape[3] * decoder.SpatialScale],
            ScalarType.Float32, Device);
        using var cache = new WanCausalCache();
        long written = 0;
        for (long t = 0; t < latentFrames; t++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var frameScope = NewDisposeScope();
            cache.AtFirstFrame = t == 0;
            var frames = decoder.forward(x.narrow(2, t, 1), cache)[0].clamp(-1, 1);
            video.narrow(1, written, frames.shape[1]).copy_(frames);
            written += frames.shape[1];
        }
        return video.MoveToOuterDisposeScope();
    }

    private Tensor Channels(IEnumerable<float> values) =>
        tensor(values.ToArray(), [1, Config.ZDim, 1, 1, 1], ScalarType.Float32, Device).DetachFromDisposeScope();
}

/// <summary>
/// conv_in → mid_block → up_blocks → norm_out, SiLU → conv_out, on one chunk of frames. The stages run at
/// base × dim_mult in reverse; every up block but the last ends in a ×2 upsampler whose output has half the channels,
/// temporal ("upsample3d") where the encoder downsampled in time, spatial ("upsample2d") otherwise.
/// </summary>
public sealed class WanDecoder3d : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly WanCausalConv3d conv_in;
    private readonly WanMidBlock mid_block;
    private readonly ModuleList<WanUpBlock> up_blocks;
    private readonly WanRmsNorm norm_out;
    private readonly WanCausalConv3d conv_out;
#pragma warning restore IDE1006

    public WanDecoder3d(WanVaeConfig config, WeightSource w, string prefix) : base(prefix)
    {
        var stages = config.DimMult.Count;
        long[] dims = [.. new[] { config.DimMult[^1] }.Concat(config.DimMult.Reverse()).Select(m => (long)config.DecoderBaseDim * m)];
        var temporalUpsample = config.TemperalDownsample.Reverse().ToArray();

        conv_in = new WanCausalConv3d(w, $"{prefix}.conv_in", config.ZDim, dims[0], kernel: 3);
        mid_block = new WanMidBlock(w, $"{prefix}.mid_block", dims[0]);
        var blocks = new List<WanUpBlock>();
        for (var i = 0; i < stages; i++)
        {
            // Each upsampler halves the channels, so every block after the first starts from half its predecessor's width.
            var inDim = i == 0 ? dims[i] : dims[i] / 2;
            var mode = i == stages - 1 ? WanUpsampling.None : temporalUpsample[i] ? WanUpsampling.SpaceAndTime : WanUpsampling.Space;
            blocks.Add(new WanUpBlock(w, $"{prefix}.up_blocks.{i}", inDim, dims[i + 1], config.NumResBlocks + 1, mode));
        }
        up_blocks = new ModuleList<WanUpBlock>([.. blocks]);
        norm_out = new WanRmsNorm(w, $"{prefix}.norm_out", dims[^1], images: false);
        conv_out = new WanCausalConv3d(w, $"{prefix}.conv_out", dims[^1], config.OutChannels, kernel: 3);
        TemporalScale = 1L << temporalUpsample.Count(up => up);
        SpatialScale = 1L << (stages - 1);
        RegisterComponents();
    }

    /// <summary>Video frames per latent frame after the first.</summary>
    public long TemporalScale { get; }

    /// <summary>Pixels per latent position along H and W.</summary>
    public long SpatialScale { get; }

    /// <summary>[B, z_dim, t, h, w] → [B, 3, t', 8h, 8w], carrying every causal conv's history in <paramref name="cache"/>.</summary>
    public Tensor forward(Tensor x, WanCausalCache cache)
    {
        using var scope = NewDisposeScope();
        var h = conv_in.forward(x, cache);
        h = mid_block.forward(h, cache);
        foreach (var block in up_blocks) h = block.forward(h, cache);
        return conv_out.forward(nn.functional.silu(norm_out.forward(h)), cache).MoveToOuterDisposeScope();
    }
}

/// <summary>resnets[0] → attentions[0] → resnets[1] at the lowest resolution.</summary>
public sealed class WanMidBlock : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly ModuleList<WanResidualBlock> resnets;
    private readonly ModuleList<WanAttentionBlock> attentions;
#pragma warning restore IDE1006

    public WanMidBlock(WeightSource w, string prefix, long dim) : base(prefix)
    {
        resnets = new ModuleList<WanResidualBlock>(
            new WanResidualBlock(w, $"{prefix}.resnets.0", dim, dim),
            new WanResidualBlock(w, $"{prefix}.resnets.1", dim, dim));
        attentions = new ModuleList<WanAttentionBlock>(new WanAttentionBlock(w, $"{prefix}.attentions.0", dim));
        RegisterComponents();
    }

    public Tensor forward(Tensor x, WanCausalCache cache)
    {
        using var scope = NewDisposeScope();
        var h = resnets[0].forward(x, cache);
        h = attentions[0].forward(h);
        return resnets[1].forward(h, cache).MoveToOuterDisposeScope();
    }
}

/// <summary>Residual blocks (the first changes the width), then the stage's upsampler if it has one.</summary>
public sealed class WanUpBlock : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly ModuleList<WanResidualBlock> resnets;
    private readonly ModuleList<WanResample> upsamplers;
#pragma warning restore IDE1006

    public WanUpBlock(WeightSource w, string prefix, long inDim, long outDim, int residualBlocks, WanUpsampling upsampling) : base(prefix)
    {
        resnets = new ModuleList<WanResidualBlock>([.. Enumerable.Range(0, residualBlocks)
            .Select(i => new WanResidualBlock(w, $"{prefix}.resnets.{i}", i == 0 ? inDim : outDim, outDim))]);
        upsamplers = upsampling == WanUpsampling.None
            ? new ModuleList<WanResample>()
            : new ModuleList<WanResample>(new WanResample(w, $"{prefix}.upsamplers.0", outDim, upsampling));
        RegisterComponents();
    }

    public Tensor forward(Tensor x, WanCausalCache cache)
    {
        using var scope = NewDisposeScope();
        var h = x;
        foreach (var resnet in resnets) h = resnet.forward(h, cache);
        foreach (var upsampler in upsamplers) h = upsampler.forward(h, cache);
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// x + conv2(silu(norm2(conv1(silu(norm1(x)))))), with a 1×1×1 conv_shortcut on x where the width changes
/// (dropout is the identity at inference).
/// </summary>
public sealed class WanResidualBlock : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly WanRmsNorm norm1;
    private readonly WanCausalConv3d conv1;
    private readonly WanRmsNorm norm2;
    private readonly WanCausalConv3d conv2;
    private readonly WanCausalConv3d? conv_shortcut;
#pragma warning restore IDE1006

    public WanResidualBlock(WeightSource w, string prefix, long inDim, long outDim) : base(prefix)
    {
        norm1 = new WanRmsNorm(w, $"{prefix}.norm1", inDim, images: false);
        conv1 = new WanCausalConv3d(w, $"{prefix}.conv1", inDim, outDim, kernel: 3);
        norm2 = new WanRmsNorm(w, $"{prefix}.norm2", outDim, images: false);
        conv2 = new WanCausalConv3d(w, $"{prefix}.conv2", outDim, outDim, kernel: 3);
        conv_shortcut = inDim == outDim ? null : new WanCausalConv3d(w, $"{prefix}.conv_shortcut", inDim, outDim, kernel: 1);
        RegisterComponents();
    }

    public Tensor forward(Tensor x, WanCausalCache cache)
    {
        using var scope = NewDisposeScope();
        var shortcut = conv_shortcut?.forward(x, cache) ?? x;
        var h = conv1.forward(nn.functional.silu(norm1.forward(x)), cache);
        h = conv2.forward(nn.functional.silu(norm2.forward(h)), cache);
        return (h + shortcut).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// x + proj(softmax(q kᵀ/√C) v) within each frame: one head over the frame's H·W positions, q, k, v from a 1×1
/// to_qkv on the RMS-normed frame. No information crosses frames, so it needs no cache.
/// </summary>
public sealed class WanAttentionBlock : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly WanRmsNorm norm;
    private readonly Conv2d to_qkv;
    private readonly Conv2d proj;
#pragma warning restore IDE1006

    public WanAttentionBlock(WeightSource w, string prefix, long dim) : base(prefix)
    {
        norm = new WanRmsNorm(w, $"{prefix}.norm", dim, images: true);
        to_qkv = new Conv2d(w, $"{prefix}.to_qkv", dim, 3 * dim, kernel: 1, stride: 1, padding: 0);
        proj = new Conv2d(w, $"{prefix}.proj", dim, dim, kernel: 1, stride: 1, padding: 0);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var (batch, channels, time, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], x.shape[4]);
        var frames = x.permute(0, 2, 1, 3, 4).reshape(batch * time, channels, height, width);
        var qkv = to_qkv.forward(norm.forward(frames)).reshape(batch * time, 1, 3 * channels, height * width).permute(0, 1, 3, 2);
        var qkvChunks = qkv.chunk(3, dim: -1);
        var attended = nn.functional.scaled_dot_product_attention(qkvChunks[0], qkvChunks[1], qkvChunks[2]); // [B·T, 1, H·W, C]
        var projected = proj.forward(attended.squeeze(1).permute(0, 2, 1).reshape(batch * time, channels, height, width));
        return (projected.view(batch, time, channels, height, width).permute(0, 2, 1, 3, 4) + x).MoveToOuterDisposeScope();
    }
}

/// <summary>How an up block's upsampler scales its input.</summary>
public enum WanUpsampling
{
    None,

    /// <summary>"upsample2d": ×2 in H and W.</summary>
    Space,

    /// <summary>"upsample3d": ×2 in time through time_conv, then ×2 in H and W.</summary>
    SpaceAndTime,
}

/// <summary>
/// ×2 upsampling that halves the channels. For "upsample3d" a causal time_conv (3×1×1) first makes two output frames
/// of every input frame from its channel halves, except on the clip's first latent frame, which stays one frame. Then,
/// per frame, resample = [nearest ×2 in H and W, 3×3 conv].
/// </summary>
public sealed class WanResample : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly ModuleList<nn.Module<Tensor, Tensor>> resample;
    private readonly WanCausalConv3d? time_conv;
#pragma warning restore IDE1006

    public WanResample(WeightSource w, string prefix, long dim, WanUpsampling upsampling) : base(prefix)
    {
        if (upsampling == WanUpsampling.None) throw new ArgumentException("a resample layer must upsample", nameof(upsampling));
        resample = new ModuleList<nn.Module<Tensor, Tensor>>(
            new WanNearestUpsample2x(),
            new Conv2d(w, $"{prefix}.resample.1", dim, dim / 2, kernel: 3, stride: 1, padding: 1));
        time_conv = upsampling == WanUpsampling.SpaceAndTime
            ? new WanCausalConv3d(w, $"{prefix}.time_conv", dim, 2 * dim, kernel: (3, 1, 1))
            : null;
        RegisterComponents();
    }

    public Tensor forward(Tensor x, WanCausalCache cache)
    {
        using var scope = NewDisposeScope();
        var h = x;
        if (time_conv is not null && !cache.AtFirstFrame)
        {
            var (b, c, t, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], x.shape[4]);
            // Channels [0, c) are frame 2i, channels [c, 2c) frame 2i+1.
            h = time_conv.forward(x, cache).view(b, 2, c, t, height, width).permute(0, 2, 3, 1, 4, 5).reshape(b, c, 2 * t, height, width);
        }
        var (batch, channels, time) = (h.shape[0], h.shape[1], h.shape[2]);
        var frames = h.permute(0, 2, 1, 3, 4).reshape(batch * time, channels, h.shape[3], h.shape[4]);
        foreach (var layer in resample) frames = layer.forward(frames);
        return frames.view(batch, time, frames.shape[1], frames.shape[2], frames.shape[3]).permute(0, 2, 1, 3, 4).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A 3-D convolution that is causal in time: it sees the current frame and the kernel's earlier frames (from the
/// cache, zeros before the clip starts) and pads H and W symmetrically. Weight [out, in, kt, kh, kw].
/// </summary>
public sealed class WanCausalConv3d : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Parameter weight;
    private readonly Parameter bias;
#pragma warning restore IDE1006
    private readonly long _pastFrames;
    private readonly long[] _padding;

    public WanCausalConv3d(WeightSource w, string prefix, long inChannels, long outChannels, int kernel)
        : this(w, prefix, inChannels, outChannels, (kernel, kernel, kernel))
    {
    }

    public WanCausalConv3d(WeightSource w, string prefix, long inChannels, long outChannels, (int Time, int Height, int Width) kernel) : base(prefix)
    {
        weight = w.Parameter($"{prefix}.weight", outChannels, inChannels, kernel.Time, kernel.Height, kernel.Width);
        bias = w.Parameter($"{prefix}.bias", outChannels);
        _pastFrames = kernel.Time - 1;
        _padding = [0, kernel.Height / 2, kernel.Width / 2];
        RegisterComponents();
    }

    /// <summary>
    /// [B, C, t, H, W] → [B, C', t, H, W]. With a <paramref name="cache"/> the input continues the frames this conv saw
    /// before; without one it is the whole clip.
    /// </summary>
    public Tensor forward(Tensor x, WanCausalCache? cache)
    {
        if (_pastFrames == 0) return nn.functional.conv3d(x, weight, bias, padding: _padding);
        using var scope = NewDisposeScope();
        var past = cache?.History(this, x, _pastFrames) ?? zeros([x.shape[0], x.shape[1], _pastFrames, x.shape[3], x.shape[4]], x.dtype, x.device);
        var input = cat([past, x], 2);
        cache?.Remember(this, input.narrow(2, input.shape[2] - _pastFrames, _pastFrames));
        return nn.functional.conv3d(input, weight, bias, padding: _padding).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Nearest-neighbour ×2 in H and W of [N, C, H, W]. The reference asks for "nearest-exact", source ⌊(i + ½)/2⌋, which
/// for a factor of 2 is the same pixel as "nearest", ⌊i/2⌋; libtorch's C++ interpolate warns on every nearest-exact call.
/// </summary>
public sealed class WanNearestUpsample2x : nn.Module<Tensor, Tensor>
{
    public WanNearestUpsample2x() : base("upsample")
    {
    }

    public override Tensor forward(Tensor x) => nn.functional.interpolate(x, scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest);
}

/// <summary>
/// The Wan VAE's RMS norm over channels (dim 1): x / max(‖x‖₂, 1e-12) · √C · gamma, i.e. F.normalize scaled back to
/// unit RMS, with gamma [C, 1, 1, 1] for videos or [C, 1, 1] for single frames (<paramref name="images"/>).
/// </summary>
public sealed class WanRmsNorm : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Parameter gamma;
#pragma warning restore IDE1006
    private readonly double _scale;

    public WanRmsNorm(WeightSource w, string prefix, long dim, bool images) : base(prefix)
    {
        gamma = images ? w.Parameter($"{prefix}.gamma", dim, 1, 1) : w.Parameter($"{prefix}.gamma", dim, 1, 1, 1);
        _scale = Math.Sqrt(dim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return (nn.functional.normalize(x, p: 2, dim: 1, eps: 1e-12) * _scale * gamma).MoveToOuterDisposeScope();
    }
}

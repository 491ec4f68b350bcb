using Microsoft.Extensions.Logging;
using MLNode.Engines.Hosting;
using MLNode.Engines.Poc;
using MLNode.Protocol.Poc;
using MLNode.Runtime.Diffusion;
using MLNode.Runtime.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Dit.Poc;

/// <summary>
/// PoC v2 on Wan2.2's pair of experts (docs/wan-poc.md). For nonce n:
/// <code>
///   z_n       = Philox randn [C, F, H, W], seed32("{BH}_{PK}_nonce_{n}_wan_latent")     LatentNoise
///   (t_n, e_n) = seeded grid timestep and the expert it selects                          docs/wan-poc-routing.md
///   c_n       = PoC v2's inputs normal(seed32("{BH}_{PK}_nonce{n}")) as [text_len, text_dim]
///   x         = expert e_n's residual stream, after every block i: x ← x − 2 (x·v_i) v_i   v_i PoC v2's layer vectors
///   y_n       = norm_out(x)[last video token]                                               [D]
///   artifact  = PoC v2's pick, Haar rotation and float16 encoding of y_n
/// </code>
/// A batch is grouped by expert so each expert runs once on its contiguous rows; grouping changes no value.
/// </summary>
public sealed class WanPocProver : IPocProver
{
    private readonly WanTransformer3DModel[] _experts;
    private readonly WanPocSchedule _schedule;
    private readonly WanPocGeometry _geometry;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _forward = new(1, 1);
    private (string BlockHash, Tensor Vectors)? _blockVectors;

    /// <param name="highNoise">Expert 0 (diffusers <c>transformer</c>), run at t ≥ the schedule's boundary.</param>
    /// <param name="lowNoise">Expert 1 (diffusers <c>transformer_2</c>).</param>
    /// <param name="schedule">The timestep grid and boundary the nonces are routed by.</param>
    /// <param name="geometry">Latent frame size and text length of every nonce.</param>
    public WanPocProver(WanTransformer3DModel highNoise, WanTransformer3DModel lowNoise, WanPocSchedule schedule, WanPocGeometry geometry, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(highNoise);
        ArgumentNullException.ThrowIfNull(lowNoise);
        (_schedule, _geometry, _logger) = (schedule ?? throw new ArgumentNullException(nameof(schedule)),
            geometry ?? throw new ArgumentNullException(nameof(geometry)), logger ?? throw new ArgumentNullException(nameof(logger)));
        var (a, b) = (highNoise.Config, lowNoise.Config);
        if (a.InnerDim != b.InnerDim || a.NumLayers != b.NumLayers || a.InChannels != b.InChannels || a.TextDim != b.TextDim
            || !a.PatchSize.SequenceEqual(b.PatchSize))
            throw new ArgumentException("the two experts differ in width, depth, latent channels, text width or patch size", nameof(lowNoise));
        if (Device(highNoise).ToString() != Device(lowNoise).ToString())
            throw new ArgumentException($"the experts are on {Device(highNoise)} and {Device(lowNoise)}", nameof(lowNoise));
        // Refuses a latent frame that is not whole patches now rather than at the first batch.
        _ = geometry.TokensPerFrame(a.PatchSize);
        _experts = [highNoise, lowNoise];
    }

    /// <summary>The DiT width D: the residual stream the blocks' reflections act on and the artifact's source.</summary>
    public int HiddenSize => Config.InnerDim;

    private WanTransformerConfig Config => _experts[WanRouting.HighNoiseExpert].Config;

    public async Task<IReadOnlyList<PocArtifact>> ComputeAsync(PocRound round, IReadOnlyList<long> nonces, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(round);
        ArgumentNullException.ThrowIfNull(nonces);
        if (round.HiddenSize != HiddenSize)
            throw new ArgumentException($"round hidden size {round.HiddenSize} differs from the model's {HiddenSize}", nameof(round));
        var frames = _geometry.LatentFrames(round.SeqLen, Config.PatchSize);
        if (nonces.Count == 0) return [];
        await _forward.WaitAsync(ct);
        try
        {
            return await Task.Run(() => Compute(round, nonces, frames, ct), ct);
        }
        finally
        {
            _forward.Release();
        }
    }

    private List<PocArtifact> Compute(PocRound round, IReadOnlyList<long> nonces, int frames, CancellationToken ct)
    {
        var device = Device(_experts[0]);
        using var scope = NewDisposeScope();
        var routeSeeds = nonces.Select(n => WanRouting.Seed(round.BlockHash, round.PublicKey, n)).ToArray();
        var (timesteps, experts) = ExpertRouting.Route(routeSeeds, _schedule, device);
        using var groups = ExpertRouting.Group(experts);
        var latents = ExpertRouting.Permute(Latents(round, nonces, frames, device), groups);
        var contexts = ExpertRouting.Permute(Contexts(round, nonces, device), groups);
        var steps = ExpertRouting.Permute(timesteps, groups);
        var vectors = BlockVectors(round.BlockHash, device);
        _logger.LogDebug("Wan PoC batch of {Count} nonces: {High} on the high-noise expert, {Low} on the low-noise expert",
            nonces.Count, groups.HighNoiseRows, groups.LowNoiseRows);

        var lastTokens = new List<Tensor>(_experts.Length);
        // _experts is indexed by the routing's expert numbers: 0 high-noise, 1 low-noise.
        for (var expert = 0; expert < _experts.Length; expert++)
        {
            if ((expert == WanRouting.HighNoiseExpert ? groups.HighNoiseRows : groups.LowNoiseRows) == 0) continue;
            var hidden = _experts[expert].Hidden(groups.Slice(latents, expert), groups.Slice(steps, expert), groups.Slice(contexts, expert),
                (block, x) => Reflect(x, vectors[block]), ct);
            lastTokens.Add(hidden[TensorIndex.Colon, -1, TensorIndex.Colon]);
        }
        var lastHidden = ExpertRouting.Unpermute(cat(lastTokens, 0), groups);
        return ArtifactBatch.Encode(round, nonces, lastHidden);
    }

    /// <summary>Each nonce's Philox latent [C, F, H, W], stacked in batch order.</summary>
    private Tensor Latents(PocRound round, IReadOnlyList<long> nonces, int frames, Device device)
    {
        long[] shape = [Config.InChannels, frames, _geometry.LatentHeight, _geometry.LatentWidth];
        return stack(nonces.Select(n => LatentNoise.Randn(shape, WanPocSeeds.Latent(round.BlockHash, round.PublicKey, n), device)));
    }

    /// <summary>
    /// PoC v2's seeded inputs of every nonce, shaped as text contexts [B, text_len, text_dim] in float32 (the text
    /// embedder casts them to its dtype): the native kernel fills them on a GPU, the C# reference elsewhere.
    /// </summary>
    private Tensor Contexts(PocRound round, IReadOnlyList<long> nonces, Device device)
    {
        var inputs = new PocRound(round.BlockHash, round.PublicKey, _geometry.TextLength, Config.TextDim, KDim: 1, round.StrongRng);
        long[] shape = [nonces.Count, inputs.SeqLen, inputs.HiddenSize];
        if (device.type == DeviceType.CUDA && NativeKernels.IsAvailable)
        {
            using var seeds = NativeKernels.SeedTensor(PocInputs.Seeds(inputs, [.. nonces]), device);
            var contexts = empty(shape, ScalarType.Float32, device);
            NativeKernels.PocInputs(seeds, inputs.StrongRng, contexts);
            return contexts;
        }
        var host = new float[checked(nonces.Count * inputs.InputLength)];
        PocInputs.FillBatch(inputs, [.. nonces], host);
        return tensor(host, shape).to(device);
    }

    /// <summary>
    /// x ← x − 2 (x·v) v for every token, in place in the residual stream's float32, rounded as libtorch's
    /// <c>x - 2 * matmul(x, v).unsqueeze(-1) * v</c> (the native kernel rounds the same way).
    /// </summary>
    private static Tensor Reflect(Tensor x, Tensor v)
    {
        if (NativeKernels.Handles(x))
        {
            NativeKernels.HouseholderReflect(x, null, v);
            return x;
        }
        using var scope = NewDisposeScope();
        x.sub_(2 * matmul(x, v).unsqueeze(-1) * v);
        return x;
    }

    /// <summary>PoC v2's per-layer unit vectors, one per block (float32 [L, D]); they depend only on the block hash.</summary>
    private Tensor BlockVectors(string blockHash, Device device)
    {
        if (_blockVectors is { } cached && cached.BlockHash == blockHash)
            return cached.Vectors;
        _blockVectors?.Vectors.Dispose();
        var flat = Enumerable.Range(0, Config.NumLayers).SelectMany(i => Householder.LayerVector(blockHash, i, HiddenSize)).ToArray();
        var vectors = tensor(flat, [Config.NumLayers, HiddenSize]).to(device).DetachFromDisposeScope();
        _blockVectors = (blockHash, vectors);
        return vectors;
    }

    private static Device Device(WanTransformer3DModel model) => model.parameters().First().device;
}

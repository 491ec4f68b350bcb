using static TorchSharp.torch;

namespace MLNode.Engines.Dit.Vae;

/// <summary>
/// What each causal 3-D convolution of the decoder remembers between latent frames: the last input frames its
/// kernel reaches back to (the reference's <c>feat_cache</c>, CACHE_T = 2). Decoding one latent frame at a time with
/// these gives the same result as running the causal convolutions over the whole clip at once, while only one
/// chunk's activations live at a time. The reference stores fewer frames (or zeros) at the start of the clip and pads
/// the difference with zeros; an empty history here means zero frames, which is the same input to every kernel.
/// </summary>
public sealed class WanCausalCache : IDisposable
{
    private readonly Dictionary<WanCausalConv3d, Tensor> _history = [];

    /// <summary>
    /// True while the first latent frame is decoded: that frame stands for one video frame (the clip's first), so
    /// the temporal upsamplers pass it through instead of doubling it (the reference's "Rep" entry).
    /// </summary>
    public bool AtFirstFrame { get; set; } = true;

    /// <summary>The last <paramref name="frames"/> input frames <paramref name="conv"/> saw, zeros where it saw none yet.</summary>
    internal Tensor History(WanCausalConv3d conv, Tensor like, long frames) =>
        _history.TryGetValue(conv, out var past)
            ? past
            : zeros([like.shape[0], like.shape[1], frames, like.shape[3], like.shape[4]], like.dtype, like.device);

    /// <summary>Keeps a compact copy of <paramref name="frames"/> past the caller's dispose scope, dropping what it replaces.</summary>
    internal void Remember(WanCausalConv3d conv, Tensor frames)
    {
        var kept = frames.clone().contiguous().DetachFromDisposeScope();
        if (_history.Remove(conv, out var previous)) previous.Dispose();
        _history[conv] = kept;
    }

    public void Dispose()
    {
        foreach (var past in _history.Values) past.Dispose();
        _history.Clear();
    }
}

using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Asr.Whisper;

/// <summary>
/// The decoding rules of Whisper applied to one step's logits [B, V] of B windows, in openai-whisper's order: the
/// checkpoint's <c>begin_suppress_tokens</c> at a window's first sampled token (blank suppression), its
/// <c>suppress_tokens</c> at every step, then in timestamp mode the <see cref="TimestampRules"/>, &lt;|notimestamps|&gt;
/// suppressed, and a timestamp forced when the timestamps together are likelier than the best text token. Masked
/// entries become −∞ in a new tensor; the model's logits stay as they were, for Raw logprobs.
/// </summary>
public sealed class WhisperLogitRules : IDisposable
{
    private readonly Tensor _everyStep;
    private readonly Tensor _firstStep;
    private readonly Tensor _ids;
    private readonly TimestampRules? _timestamps;

    public WhisperLogitRules(WhisperConfig config, WhisperSpecialTokens special, bool timestamps, Device device)
    {
        var vocabulary = config.VocabSize;
        IEnumerable<int> everyStep = config.SuppressTokens;
        if (timestamps)
        {
            if (!special.HasTimestamps) throw new ArgumentException("this vocabulary has no timestamp tokens", nameof(timestamps));
            _timestamps = new TimestampRules(special.EndOfText, special.TimestampBegin!.Value, vocabulary, config.MaxInitialTimestampIndex);
            everyStep = everyStep.Append(special.NoTimestamps!.Value);
        }
        _everyStep = Mask(everyStep, vocabulary, device);
        _firstStep = Mask(config.BeginSuppressTokens, vocabulary, device);
        _ids = arange(vocabulary, ScalarType.Int64, device).unsqueeze(0).DetachFromDisposeScope();
    }

    /// <param name="logits">float32 [B, V], the model's.</param>
    /// <param name="sampled">per window, the tokens it has generated after its prompt.</param>
    public Tensor Apply(Tensor logits, IReadOnlyList<IReadOnlyList<int>> sampled)
    {
        using var scope = NewDisposeScope();
        var device = logits.device;
        var first = tensor(sampled.Select(s => s.Count == 0).ToArray(), device: device).unsqueeze(1);
        var mask = _everyStep | (_firstStep & first);
        if (_timestamps is null) return logits.masked_fill(mask, double.NegativeInfinity).MoveToOuterDisposeScope();

        var constraints = sampled.Select(_timestamps.Next).ToArray();
        Tensor Column(Func<TimestampConstraint, int> bound) => tensor(constraints.Select(c => (long)bound(c)).ToArray(), device: device).unsqueeze(1);
        var begin = _timestamps.TimestampBegin;
        mask = mask
            | (_ids < Column(c => c.TextBelow))
            | ((_ids >= begin) & (_ids < Column(c => c.TimestampFloor)))
            | (_ids >= Column(c => c.TimestampCeiling));
        var masked = logits.masked_fill(mask, double.NegativeInfinity);
        var logprobs = masked.log_softmax(-1);
        var timestampsWin = logprobs.narrow(1, begin, logprobs.shape[1] - begin).logsumexp(1) > logprobs.narrow(1, 0, begin).max(1).values;
        return masked.masked_fill(timestampsWin.unsqueeze(1) & (_ids < begin), double.NegativeInfinity).MoveToOuterDisposeScope();
    }

    private static Tensor Mask(IEnumerable<int> ids, int vocabulary, Device device)
    {
        var mask = new bool[vocabulary];
        foreach (var id in ids) mask[id] = true;
        return tensor(mask, device: device).unsqueeze(0).DetachFromDisposeScope();
    }

    public void Dispose()
    {
        _everyStep.Dispose();
        _firstStep.Dispose();
        _ids.Dispose();
    }
}

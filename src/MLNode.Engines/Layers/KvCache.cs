using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>
/// Keys and values of up to <see cref="Slots"/> sequences, each up to <see cref="Capacity"/> positions,
/// preallocated per layer as [slots, kv_heads, capacity, head_dim] so that a decode step writes one
/// position per sequence in place and reads every sequence of the batch with one gather.
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly Tensor[] _keys;
    private readonly Tensor[] _values;
    private readonly Stack<int> _free;

    public KvCache(int layers, int slots, int kvHeads, int capacity, int headDim, ScalarType dtype, Device device)
    {
        (Slots, Capacity) = (slots, capacity);
        _keys = Enumerable.Range(0, layers).Select(_ => zeros([slots, kvHeads, capacity, headDim], dtype, device).DetachFromDisposeScope()).ToArray();
        _values = Enumerable.Range(0, layers).Select(_ => zeros([slots, kvHeads, capacity, headDim], dtype, device).DetachFromDisposeScope()).ToArray();
        _free = new Stack<int>(Enumerable.Range(0, slots).Reverse());
    }

    public int Slots { get; }
    public int Capacity { get; }
    public int FreeSlots => _free.Count;

    /// <summary>Bytes a cache of this shape takes on the device, to size it before allocating.</summary>
    public static long Bytes(int layers, int slots, int kvHeads, int capacity, int headDim, ScalarType dtype) =>
        2L * layers * slots * kvHeads * capacity * headDim * (dtype == ScalarType.Float32 ? 4 : 2);

    /// <summary>Device memory a model's KV cache may take when nothing else is said (env MLNODE_KV_CACHE_GB, default 4 GiB).</summary>
    public static double BudgetGigabytes => double.TryParse(Environment.GetEnvironmentVariable("MLNODE_KV_CACHE_GB"), out var gb) && gb > 0 ? gb : 4;

    /// <summary>Positions per slot, at most <paramref name="wanted"/>, that <paramref name="slots"/> slots of this shape hold within <see cref="BudgetGigabytes"/>.</summary>
    public static int CapacityWithinBudget(int wanted, int layers, int slots, int kvHeads, int headDim, ScalarType dtype) =>
        (int)Math.Min(wanted, (long)(BudgetGigabytes * (1L << 30)) / Bytes(layers, slots, kvHeads, 1, headDim, dtype));

    public int Acquire() => _free.Count > 0 ? _free.Pop() : throw new InvalidOperationException("no free KV-cache slot");

    public void Release(int slot) => _free.Push(slot);

    internal Tensor Keys(int layer) => _keys[layer];
    internal Tensor Values(int layer) => _values[layer];

    public void Dispose()
    {
        foreach (var t in _keys.Concat(_values)) t.Dispose();
    }
}

/// <summary>How one forward uses the cache: whole prompts into their slots, or one new token for each of several slots.</summary>
public abstract record KvStep(KvCache Cache);

/// <summary>
/// The prompts of B sequences in one forward, right-padded to the longest, <see cref="Length"/> L. Padding
/// on the right needs no mask beyond the causal one: every real token keeps its own position 0..len−1 and
/// attends only to earlier positions, all real. Row b's tokens [0, lengths[b]) are stored into slot
/// slots[b]; the padding's keys and values are not stored, and its outputs are never read.
/// </summary>
public sealed record PrefillStep : KvStep
{
    public PrefillStep(KvCache cache, IReadOnlyList<int> slots, IReadOnlyList<int> lengths, Device device) : base(cache)
    {
        Length = lengths.Max();
        var real = Enumerable.Range(0, lengths.Count).SelectMany(b => Enumerable.Range(0, lengths[b]).Select(p => (Row: b, Position: p))).ToArray();
        Tokens = tensor(real.Select(t => (long)(t.Row * Length + t.Position)).ToArray(), device: device);
        TokenSlots = tensor(real.Select(t => (long)slots[t.Row]).ToArray(), device: device);
        TokenPositions = tensor(real.Select(t => (long)t.Position).ToArray(), device: device);
        Last = tensor(lengths.Select((n, b) => (long)(b * Length + n - 1)).ToArray(), device: device);
    }

    /// <summary>L: the longest prompt, the width of the batch.</summary>
    public long Length { get; }

    /// <summary>Indices of the real tokens in the flattened batch [B·L], int64 [N], row by row.</summary>
    public Tensor Tokens { get; }

    /// <summary>The cache slot of each real token, int64 [N].</summary>
    public Tensor TokenSlots { get; }

    /// <summary>The position of each real token, int64 [N].</summary>
    public Tensor TokenPositions { get; }

    /// <summary>Index of each row's last prompt token in the flattened batch [B·L], int64 [B]: where its next token is predicted.</summary>
    public Tensor Last { get; }
}

/// <summary>One token per sequence: <paramref name="Slots"/> and <paramref name="Positions"/> are int64 [B]; <paramref name="Span"/> = max position + 1.</summary>
public sealed record DecodeStep(KvCache Cache, Tensor Slots, Tensor Positions, long Span) : KvStep(Cache);

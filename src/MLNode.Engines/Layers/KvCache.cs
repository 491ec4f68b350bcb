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

    public int Acquire() => _free.Count > 0 ? _free.Pop() : throw new InvalidOperationException("no free KV-cache slot");

    public void Release(int slot) => _free.Push(slot);

    internal Tensor Keys(int layer) => _keys[layer];
    internal Tensor Values(int layer) => _values[layer];

    public void Dispose()
    {
        foreach (var t in _keys.Concat(_values)) t.Dispose();
    }
}

/// <summary>How one forward uses the cache: a whole prompt into one slot, or one new token for each of several slots.</summary>
public abstract record KvStep(KvCache Cache);

/// <summary>The prompt of one sequence, positions 0..L−1, written into <paramref name="Slot"/>.</summary>
public sealed record PrefillStep(KvCache Cache, int Slot) : KvStep(Cache);

/// <summary>One token per sequence: <paramref name="Slots"/> and <paramref name="Positions"/> are int64 [B]; <paramref name="Span"/> = max position + 1.</summary>
public sealed record DecodeStep(KvCache Cache, Tensor Slots, Tensor Positions, long Span) : KvStep(Cache);

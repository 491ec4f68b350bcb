using static TorchSharp.torch;

namespace MLNode.Engines.Asr.Whisper;

/// <summary>
/// The decoder state of up to <see cref="Capacity"/> windows decoded together, preallocated per decoder layer:
/// self-attention keys and values [rows, heads, positions, head_dim], written one position per step, and
/// cross-attention keys and values [rows, heads, source_positions, head_dim], computed once per window from its
/// encoder output. The <see cref="Rows"/> live windows occupy the leading rows, so a step reads views of the
/// buffers and copies nothing; when windows finish, <see cref="Keep"/> moves the survivors down once, instead of
/// every step gathering them (the cross-attention state is ~250 MB per window for large-v3).
/// </summary>
public sealed class WhisperKvCache : IDisposable
{
    private readonly Tensor[] _selfKeys;
    private readonly Tensor[] _selfValues;
    private readonly Tensor[] _crossKeys;
    private readonly Tensor[] _crossValues;
    private readonly Tensor _slots;

    public WhisperKvCache(int layers, int capacity, int heads, int headDim, int positions, int sourcePositions, ScalarType dtype, Device device)
    {
        Capacity = capacity;
        Positions = positions;
        // Zeroed, not empty: a one-token step attends over every slot with the later ones masked, and a masked score is
        // still computed, so a slot never written must hold finite numbers (0 · NaN would poison the softmax).
        Tensor Buffer(int length) => zeros([capacity, heads, length, headDim], dtype, device).DetachFromDisposeScope();
        _selfKeys = Enumerable.Range(0, layers).Select(_ => Buffer(positions)).ToArray();
        _selfValues = Enumerable.Range(0, layers).Select(_ => Buffer(positions)).ToArray();
        _crossKeys = Enumerable.Range(0, layers).Select(_ => Buffer(sourcePositions)).ToArray();
        _crossValues = Enumerable.Range(0, layers).Select(_ => Buffer(sourcePositions)).ToArray();
        _slots = arange(positions, ScalarType.Int64, device).DetachFromDisposeScope();
        Position = zeros(1, ScalarType.Int64, device).DetachFromDisposeScope();
    }

    /// <summary>
    /// The decoder position [1] that a one-token step writes its keys and values to and attends up to. It lives on the
    /// device so that a step captured as a CUDA graph reads the current position when replayed.
    /// </summary>
    internal Tensor Position { get; }

    /// <summary>Which self-attention slots a one-token step sees: positions 0 … <see cref="Position"/>, as an attention mask [1, 1, 1, positions].</summary>
    internal Tensor VisibleSlots() => _slots.le(Position).view(1, 1, 1, Positions);

    /// <summary>Windows the cache can hold.</summary>
    public int Capacity { get; }

    /// <summary>Decoder positions per window (prompt and generated tokens).</summary>
    public int Positions { get; }

    /// <summary>Windows decoding now, in rows [0, Rows).</summary>
    public int Rows { get; private set; }

    /// <summary>Bytes a cache of this shape takes, to size it before allocating.</summary>
    public static long Bytes(int layers, int capacity, int heads, int headDim, int positions, int sourcePositions, ScalarType dtype) =>
        2L * layers * capacity * heads * headDim * (positions + sourcePositions) * (dtype == ScalarType.Float32 ? 4 : 2);

    /// <summary>Starts a batch of <paramref name="rows"/> windows; what the buffers held before is overwritten as they decode.</summary>
    public void Start(int rows)
    {
        if (rows < 1 || rows > Capacity) throw new ArgumentOutOfRangeException(nameof(rows), rows, $"the cache holds 1..{Capacity} windows");
        Rows = rows;
    }

    /// <summary>Keeps the live rows <paramref name="rows"/> (ascending), moved to [0, rows.Count) in that order.</summary>
    public void Keep(IReadOnlyList<int> rows)
    {
        if (rows.Count == Rows) return;
        using var scope = NewDisposeScope();
        var index = tensor(rows.Select(r => (long)r).ToArray(), device: _selfKeys[0].device);
        foreach (var buffer in _selfKeys.Concat(_selfValues).Concat(_crossKeys).Concat(_crossValues))
            buffer.narrow(0, 0, rows.Count).copy_(buffer.index_select(0, index));
        Rows = rows.Count;
    }

    internal Tensor SelfKeys(int layer) => _selfKeys[layer].narrow(0, 0, Rows);
    internal Tensor SelfValues(int layer) => _selfValues[layer].narrow(0, 0, Rows);
    internal Tensor CrossKeys(int layer) => _crossKeys[layer].narrow(0, 0, Rows);
    internal Tensor CrossValues(int layer) => _crossValues[layer].narrow(0, 0, Rows);

    public void Dispose()
    {
        foreach (var buffer in _selfKeys.Concat(_selfValues).Concat(_crossKeys).Concat(_crossValues)) buffer.Dispose();
        _slots.Dispose();
        Position.Dispose();
    }
}

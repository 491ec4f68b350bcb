using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace MLNode.Runtime.Native;

public static partial class NativeKernels
{
    /// <summary>
    /// Largest head dimension and query heads per key/value head <see cref="DecodeAttention"/> takes; the head dimension
    /// must also be a whole number of 16-byte vectors.
    /// </summary>
    public const int DecodeAttentionMaxHeadDim = 128, DecodeAttentionMaxGroup = 16;

    /// <summary>
    /// The query, key and value heads of one new token per sequence, from the packed projection <paramref name="qkv"/>
    /// [B, (H + 2·KV)·D]: each q and k head RMS-normalised by <paramref name="qNorm"/> / <paramref name="kNorm"/> (Qwen3;
    /// null for Qwen2) and rotated by the per-sequence tables <paramref name="cos"/> / <paramref name="sin"/> [B, D]; keys
    /// and values written into the caches [slots, KV, capacity, D] at (<paramref name="slots"/>[b],
    /// <paramref name="positions"/>[b]) (int64 [B]); returns the queries [B, H, D]. Rounds as the eager ops do.
    /// </summary>
    public static Tensor DecodeQkv(Tensor qkv, Tensor? qNorm, Tensor? kNorm, double eps, Tensor cos, Tensor sin,
        Tensor keys, Tensor values, Tensor slots, Tensor positions, int heads, int kvHeads)
    {
        var (batch, dim) = (qkv.shape[0], keys.shape[^1]);
        if (qkv.dim() != 2 || qkv.shape[1] != (heads + 2L * kvHeads) * dim)
            throw new ArgumentException($"qkv must be [B, {(heads + 2L * kvHeads) * dim}], got [{string.Join(", ", qkv.shape)}]", nameof(qkv));
        RequireDecodeOperands(qkv, keys, values, slots, positions, kvHeads);
        foreach (var (name, table) in new[] { (nameof(cos), cos), (nameof(sin), sin) })
            if (!table.shape.SequenceEqual(new[] { batch, dim }) || table.dtype != qkv.dtype)
                throw new ArgumentException($"{name} must be [{batch}, {dim}] of {qkv.dtype}, got [{string.Join(", ", table.shape)}] of {table.dtype}", name);
        if ((qNorm is null) != (kNorm is null))
            throw new ArgumentException("q and k norms go together", nameof(qNorm));
        var q = empty([batch, heads, dim], qkv.dtype, qkv.device);
        Check(mlnode_decode_qkv(Pointer(qkv), qNorm is null ? 0 : Pointer(qNorm), kNorm is null ? 0 : Pointer(kNorm), (float)eps, Pointer(cos), Pointer(sin),
            Pointer(keys), Pointer(values), Pointer(slots), Pointer(positions), Pointer(q), checked((int)batch), heads, kvHeads, checked((int)dim),
            keys.shape[2], (int)qkv.dtype, Stream), nameof(mlnode_decode_qkv));
        return q;
    }

    /// <summary>
    /// softmax(q·Kᵀ / √D)·V of each query head of <paramref name="q"/> [B, H, D] over positions 0..<paramref name="positions"/>[b]
    /// of its sequence's cache slot, read in place from <paramref name="keys"/> / <paramref name="values"/>
    /// [slots, KV, capacity, D]; <paramref name="span"/> bounds every position + 1. Returns [B, H, D].
    /// </summary>
    public static Tensor DecodeAttention(Tensor q, Tensor keys, Tensor values, Tensor slots, Tensor positions, long span)
    {
        var (batch, heads, dim) = (q.shape[0], q.shape[1], q.shape[2]);
        var kvHeads = checked((int)keys.shape[1]);
        if (q.dim() != 3 || q.dtype != keys.dtype || dim != keys.shape[3])
            throw new ArgumentException($"q must be [B, H, {keys.shape[3]}] of {keys.dtype}, got [{string.Join(", ", q.shape)}] of {q.dtype}", nameof(q));
        RequireDecodeOperands(q, keys, values, slots, positions, kvHeads);
        Check(mlnode_decode_attention_workspace(checked((int)batch), checked((int)heads), checked((int)dim), span, out var floats), nameof(mlnode_decode_attention_workspace));
        using var workspace = floats == 0 ? null : empty(floats, ScalarType.Float32, q.device);
        var output = empty_like(q);
        Check(mlnode_decode_attention(Pointer(q), Pointer(keys), Pointer(values), Pointer(slots), Pointer(positions), Pointer(output),
            workspace is null ? 0 : Pointer(workspace), checked((int)batch), checked((int)heads), kvHeads, checked((int)dim), keys.shape[2], span,
            (float)(1.0 / Math.Sqrt(dim)), (int)q.dtype, Stream), nameof(mlnode_decode_attention));
        return output;
    }

    /// <summary>The residual sum <c>x + r</c> (rounded to the dtype, as the eager add) and its RMSNorm by <paramref name="weight"/>, in one pass.</summary>
    public static (Tensor Sum, Tensor Normed) AddRmsNorm(Tensor x, Tensor r, Tensor weight, double eps)
    {
        var width = x.shape[^1];
        if (!r.shape.SequenceEqual(x.shape) || r.dtype != x.dtype)
            throw new ArgumentException($"r must match x [{string.Join(", ", x.shape)}] of {x.dtype}", nameof(r));
        if (weight.dtype != x.dtype || weight.numel() != width)
            throw new ArgumentException($"weight must be [{width}] of {x.dtype}, got [{string.Join(", ", weight.shape)}] of {weight.dtype}", nameof(weight));
        var (sum, normed) = (empty_like(x), empty_like(x));
        Check(mlnode_add_rms_norm(Pointer(x), Pointer(r), Pointer(weight), Pointer(sum), Pointer(normed), x.numel() / width, checked((int)width), (float)eps,
            (int)x.dtype, Stream), nameof(mlnode_add_rms_norm));
        return (sum, normed);
    }

    /// <summary>SwiGLU's gate over the packed gate/up projection [..., 2F]: <c>silu(gate) · up</c> [..., F], rounded as the two eager ops.</summary>
    public static Tensor SiluMul(Tensor gateUp)
    {
        var width = gateUp.shape[^1] / 2;
        if (gateUp.shape[^1] % 2 != 0)
            throw new ArgumentException($"gate/up must have an even last dimension, got [{string.Join(", ", gateUp.shape)}]", nameof(gateUp));
        var y = empty([.. gateUp.shape[..^1], width], gateUp.dtype, gateUp.device);
        Check(mlnode_silu_mul(Pointer(gateUp), Pointer(y), gateUp.numel() / (2 * width), checked((int)width), (int)gateUp.dtype, Stream), nameof(mlnode_silu_mul));
        return y;
    }

    private static void RequireDecodeOperands(Tensor x, Tensor keys, Tensor values, Tensor slots, Tensor positions, int kvHeads)
    {
        if (keys.dim() != 4 || !values.shape.SequenceEqual(keys.shape) || keys.dtype != x.dtype || values.dtype != x.dtype || keys.shape[1] != kvHeads)
            throw new ArgumentException($"caches must be [slots, {kvHeads}, capacity, D] of {x.dtype}, got [{string.Join(", ", keys.shape)}] of {keys.dtype}", nameof(keys));
        if (slots.dtype != ScalarType.Int64 || positions.dtype != ScalarType.Int64 || slots.numel() != x.shape[0] || positions.numel() != x.shape[0])
            throw new ArgumentException($"slots and positions must be int64 [{x.shape[0]}]", nameof(slots));
    }

    [LibraryImport(LibraryName)]
    private static partial int mlnode_decode_qkv(nint qkv, nint qNorm, nint kNorm, float eps, nint cos, nint sin, nint keys, nint values, nint slots,
        nint positions, nint q, int batch, int heads, int kvHeads, int headDim, long capacity, int dtype, nint stream);

    [LibraryImport(LibraryName)]
    private static partial int mlnode_decode_attention_workspace(int batch, int heads, int headDim, long span, out long floats);

    [LibraryImport(LibraryName)]
    private static partial int mlnode_decode_attention(nint q, nint keys, nint values, nint slots, nint positions, nint output, nint workspace,
        int batch, int heads, int kvHeads, int headDim, long capacity, long span, float scale, int dtype, nint stream);

    [LibraryImport(LibraryName)]
    private static partial int mlnode_add_rms_norm(nint x, nint r, nint w, nint sum, nint y, long rows, int width, float eps, int dtype, nint stream);

    [LibraryImport(LibraryName)]
    private static partial int mlnode_silu_mul(nint gateUp, nint y, long rows, int width, int dtype, nint stream);
}

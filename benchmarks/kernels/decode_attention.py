"""Decode-step kernels (kernels/decode_attention.cu, kernels/gemv.cu) against PyTorch on the same inputs, Qwen3-8B shape.

- decode attention: one query token per sequence (32 query heads over 8 key/value heads, head dim 128, bf16) attending
  to positions 0..p of its KV-cache slot [64 slots, 8, 4352, 128], ours in place against PyTorch's gather of the slots'
  first p + 1 positions + grouped SDPA; bytes = the keys and values read. Every call reads another layer's cache
  (36 of them, as a decode step does, so nothing stays in L2) and each side runs as a CUDA graph of 36 calls, so the
  time is GPU time per call without launch overhead.
- gemv: y = x·Wᵀ for 1 and 2 rows (the most it takes) on the decode step's projections, ours against F.linear (cuBLAS); bytes = W.

Run from the repository root: MLNODE_KERNELS=build python3 benchmarks/kernels/decode_attention.py
"""
import ctypes, math, os, sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import native  # noqa: E402

lib = native.library()
LAYERS, SLOTS, CAPACITY, HEADS, KV, DIM = 36, 64, 4352, 32, 8, 128
dt = torch.bfloat16


def graph_ms(calls) -> float:
    """GPU time of one call: `calls` (one per layer) captured as one CUDA graph, replayed."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for c in calls:
            c()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for c in calls:
            c()
    return native.time_ms(g.replay) / len(calls)


def attention(q, keys, values, slots, positions, span):
    floats = ctypes.c_int64()
    native.check(lib, lib.mlnode_decode_attention_workspace(q.shape[0], HEADS, DIM, ctypes.c_int64(span), ctypes.byref(floats)), "workspace")
    work = torch.empty(max(floats.value, 1), device="cuda", dtype=torch.float32)
    out = torch.empty_like(q)
    native.check(lib, lib.mlnode_decode_attention(native.ptr(q), native.ptr(keys), native.ptr(values), native.ptr(slots), native.ptr(positions),
                                                  native.ptr(out), native.ptr(work), q.shape[0], HEADS, KV, DIM, ctypes.c_int64(CAPACITY),
                                                  ctypes.c_int64(span), ctypes.c_float(1 / math.sqrt(DIM)), native.DTYPE[dt], native.stream()),
                 "decode_attention")
    return out


def eager(q, keys, values, slots, positions, span):
    k = keys[:, :, :span].index_select(0, slots)
    v = values[:, :, :span].index_select(0, slots)
    mask = (torch.arange(span, device="cuda")[None, :] <= positions[:, None]).view(-1, 1, 1, span)
    grouped = q.view(-1, KV, HEADS // KV, DIM)
    return F.scaled_dot_product_attention(grouped, k, v, attn_mask=mask).reshape(-1, HEADS, DIM)


caches = [(torch.randn(SLOTS, KV, CAPACITY, DIM, device="cuda", dtype=dt), torch.randn(SLOTS, KV, CAPACITY, DIM, device="cuda", dtype=dt))
          for _ in range(LAYERS)]
for batch, position in [(1, 135), (1, 4095), (64, 135), (64, 1023), (64, 4095)]:
    q = torch.randn(batch, HEADS, DIM, device="cuda", dtype=dt)
    slots = torch.arange(batch, device="cuda")
    positions = torch.full((batch,), position, device="cuda")
    span = position + 1
    diff = (attention(q, *caches[0], slots, positions, span).float() - eager(q, *caches[0], slots, positions, span).float()).abs().max().item()
    print(f"decode_attention B={batch} span={span}: max |ours - SDPA| = {diff:.3g}")
    ours = graph_ms([lambda c=c: attention(q, *c, slots, positions, span) for c in caches])
    theirs = graph_ms([lambda c=c: eager(q, *c, slots, positions, span) for c in caches])
    native.report("decode_attention", f"B={batch} span={span} H={HEADS}/{KV} D={DIM} bf16", ours, theirs, bytes_moved=2 * batch * KV * span * DIM * 2)
del caches

lib.mlnode_gemv_max_rows.restype = ctypes.c_int32
for n, k in [(6144, 4096), (4096, 4096), (24576, 4096), (4096, 12288), (151936, 4096)]:
    weights = [torch.randn(n, k, device="cuda", dtype=dt) * 0.02 for _ in range(max(1, min(LAYERS, (8 << 30) // (n * k * 2))))]
    for rows in (1, 2):
        x = torch.randn(rows, k, device="cuda", dtype=dt)

        def gemv(w):
            y = torch.empty(rows, n, device="cuda", dtype=dt)
            native.check(lib, lib.mlnode_gemv(native.ptr(x), native.ptr(w), None, native.ptr(y), rows, n, k, native.DTYPE[dt], native.stream()), "gemv")
            return y

        diff = (gemv(weights[0]).float() - F.linear(x, weights[0]).float()).abs().max().item()
        print(f"gemv [{rows}x{k}]·[{n}x{k}]ᵀ: max |ours - F.linear| = {diff:.3g}")
        native.report("gemv", f"{rows}x{k} · {n}x{k} bf16", graph_ms([lambda w=w: gemv(w) for w in weights]),
                      graph_ms([lambda w=w: F.linear(x, w) for w in weights]), bytes_moved=n * k * 2)

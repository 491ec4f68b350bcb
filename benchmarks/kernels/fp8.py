"""Block-scaled FP8 E4M3 weights (kernels/fp8_gemm.cu) against PyTorch on the same inputs.

- dequantisation: ours vs w.view(float8_e4m3fn).float() * scales expanded to [out, in] (expanded once, outside the
  timing), rounded to bf16; both must agree bit for bit. bytes = out·in·(1 + 2).
- y = x·Wᵀ for M rows of x on Qwen3-8B / Qwen3-235B-A22B shapes: the fused kernel (M ≤ its max rows) and
  dequantise-into-scratch + F.linear, each against F.linear with a bf16 weight (what an FP8 model replaces).
  flops = 2·M·in·out; bytes (the fused kernel) = out·in fp8 + scales + M·(in + out) bf16.
- THRESHOLD lines: per shape, the largest M up to which the fused kernel beats dequantise + F.linear; the
  smallest of them is the value for Fp8BlockWeight.FusedMaxRows.
- fp8_linear_mma (kernels/fp8_linear_mma.cu, M in MMA_ROWS): the tensor-core kernel against F.linear with a bf16
  weight, both timed as CUDA graph replays (native.time_graph_ms: at a few microseconds per call the host's launch
  cost would otherwise be what is timed); bytes = out·in fp8 + scales + M·(in + out) bf16 for the HBM fraction.
  Checked against torch's dequantise-then-matmul in float32 (max abs error, and relative to max |x·Wᵀ|) and for
  identical bits over two calls. MMA lines per shape: the M at which it beats bf16 F.linear and the fused kernel
  (the fused one timed the same way), for Fp8BlockWeight.MmaMinRows / MmaMaxRows.
- fp8_lt_gemm (Hopper with cuBLAS >= 12.9, M in LT_ROWS): x quantised per (row, 128-column group) plus cuBLASLt's
  block-scaled FP8 GEMM, timed together, against F.linear with a bf16 weight; flops = 2·M·in·out, and a line with the
  fraction of the FP8 tensor-core peak. Checked: the quantisation bit for bit against torch (amax / 448, then
  float8_e4m3fn), y against the float32 product of the quantised operands.

Run from the repository root: MLNODE_KERNELS=build python3 benchmarks/kernels/fp8.py
"""
import ctypes, os, sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import native  # noqa: E402

BLOCK = 128
# (out, in) of one linear: Qwen3-8B MLP up/gate and down, its LM head; Qwen3-235B-A22B attention q and one expert.
SHAPES = [(12288, 4096), (4096, 12288), (151936, 4096), (8192, 4096), (1536, 4096), (4096, 1536)]
ROWS = [1, 2, 4, 8, 16, 32, 64, 512, 4096]
LT_ROWS = [16, 64, 512, 4096]
MMA_ROWS = [2, 4, 8, 16, 32, 64]

lib = native.library()
lib.mlnode_fp8_dequantize.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int32,
                                      ctypes.c_int32, ctypes.c_void_p, ctypes.c_int32, ctypes.c_void_p]
lib.mlnode_fp8_linear.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                  ctypes.c_int64, ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p, ctypes.c_int32, ctypes.c_void_p]
lib.mlnode_fp8_linear_max_rows.restype = ctypes.c_int32
lib.mlnode_fp8_quantize_groups.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int32, ctypes.c_int64,
                                           ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
lib.mlnode_fp8_block_gemm_available.argtypes = [ctypes.c_int32]
lib.mlnode_fp8_block_gemm.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                      ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int32, ctypes.c_void_p]
lib.mlnode_fp8_linear_mma_available.argtypes = [ctypes.c_int32]
lib.mlnode_fp8_linear_mma_scratch_bytes.argtypes = [ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.POINTER(ctypes.c_int64)]
lib.mlnode_fp8_linear_mma.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                      ctypes.c_int64, ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p, ctypes.c_int32,
                                      ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
MAX_ROWS = lib.mlnode_fp8_linear_max_rows()


def dequantize(w, s, out):
    native.check(lib, lib.mlnode_fp8_dequantize(native.ptr(w), native.ptr(s), w.shape[0], w.shape[1], BLOCK, BLOCK,
                                                native.ptr(out), native.DTYPE[out.dtype], native.stream()), "mlnode_fp8_dequantize")


def fused(x, w, s, y):
    native.check(lib, lib.mlnode_fp8_linear(native.ptr(x), native.ptr(w), native.ptr(s), x.shape[0], w.shape[1], w.shape[0],
                                            BLOCK, BLOCK, native.ptr(y), native.DTYPE[y.dtype], native.stream()), "mlnode_fp8_linear")


def mma_scratch(m, inp, out):
    """The scratch mlnode_fp8_linear_mma asks for these shapes on this GPU (None when it does not split k)."""
    size = ctypes.c_int64()
    native.check(lib, lib.mlnode_fp8_linear_mma_scratch_bytes(m, inp, out, ctypes.byref(size)), "mlnode_fp8_linear_mma_scratch_bytes")
    return torch.empty(size.value, dtype=torch.uint8, device="cuda") if size.value else None


def linear_mma(x, w, s, y, scratch):
    native.check(lib, lib.mlnode_fp8_linear_mma(native.ptr(x), native.ptr(w), native.ptr(s), x.shape[0], w.shape[1], w.shape[0],
                                                BLOCK, BLOCK, native.ptr(y), native.DTYPE[y.dtype],
                                                None if scratch is None else native.ptr(scratch),
                                                0 if scratch is None else scratch.numel(), native.stream()),
                 "mlnode_fp8_linear_mma")


def mma_rows(m, inp, out, w, s, weight_f32, dense, x, shape):
    """Checks and times the tensor-core kernel for m rows of x against F.linear with the bf16 weight `dense`; returns
    (ours, bf16 F.linear, fused or None) in ms."""
    scratch = mma_scratch(m, inp, out)
    y = torch.empty(m, out, dtype=torch.bfloat16, device="cuda")
    linear_mma(x, w, s, y, scratch)
    exact = x.float() @ weight_f32.t()
    error = (y.float() - exact).abs().max().item()
    relative = error / exact.abs().max().item()
    print(f"mma {shape} M={m}: max |y - x·Wᵀ| = {error:.3e}, / max |x·Wᵀ| = {relative:.2e} (torch: dequantise, float32 matmul)",
          flush=True)
    assert relative < 2 ** -7, "tensor-core FP8 linear disagrees with the float32 product beyond bf16 rounding"
    again = torch.empty_like(y)
    linear_mma(x, w, s, again, scratch)
    assert torch.equal(y.view(torch.int16), again.view(torch.int16)), "two identical calls gave different bits"

    ours_ms = native.time_graph_ms(lambda: linear_mma(x, w, s, y, scratch))
    bf16_ms = native.time_graph_ms(lambda: F.linear(x, dense))
    fused_ms = native.time_graph_ms(lambda: fused(x, w, s, y)) if m <= MAX_ROWS else None
    native.report("fp8_linear_mma", f"{shape} M={m}", ours_ms, bf16_ms,
                  bytes_moved=out * inp + s.numel() * 4 + m * (inp + out) * 2, flops=2 * m * inp * out)
    return ours_ms, bf16_ms, fused_ms


def quantize_groups(x, q, scales):
    native.check(lib, lib.mlnode_fp8_quantize_groups(native.ptr(x), x.shape[0], x.shape[1], native.DTYPE[x.dtype], q.shape[0],
                                                     native.ptr(q), native.ptr(scales), native.stream()),
                 "mlnode_fp8_quantize_groups")


def block_gemm(q, scales, w, s, y):
    native.check(lib, lib.mlnode_fp8_block_gemm(native.ptr(q), native.ptr(scales), native.ptr(w), native.ptr(s), q.shape[0],
                                                w.shape[1], w.shape[0], native.ptr(y), native.DTYPE[y.dtype], native.stream()),
                 "mlnode_fp8_block_gemm")


def lt_gemm_rows(m, inp, out, w, s, weight_f32, x, bf16_ms, shape):
    """Checks and times quantise + block-scaled GEMM for m rows of x (padded to a multiple of 4, as cuBLASLt needs)."""
    padded = (m + 3) // 4 * 4
    q = torch.empty(padded, inp, dtype=torch.uint8, device="cuda")
    scales = torch.empty(inp // BLOCK, padded, dtype=torch.float32, device="cuda")
    y = torch.empty(padded, out, dtype=torch.bfloat16, device="cuda")

    def quantize():
        quantize_groups(x, q, scales)

    def lt():
        quantize_groups(x, q, scales)
        block_gemm(q, scales, w, s, y)

    lt()
    groups = x.float().view(m, inp // BLOCK, BLOCK)
    # A tensor divisor: libtorch divides by a Python scalar as a multiplication by its reciprocal, which rounds
    # differently from the IEEE division the kernel (and its C# reference) define.
    amax = groups.abs().amax(-1)
    torch_scales = amax / torch.full_like(amax, 448.0)
    torch_q = (groups / torch_scales[..., None]).to(torch.float8_e4m3fn).view(torch.uint8).view(m, inp)
    code_mismatches = (q[:m] != torch_q).sum().item()
    scale_mismatches = (scales[:, :m] != torch_scales.t()).sum().item()
    print(f"quantize {shape} M={m}: {code_mismatches} codes and {scale_mismatches} scales differ from torch", flush=True)
    assert code_mismatches == 0 and scale_mismatches == 0
    x_quantised = (q[:m].view(torch.float8_e4m3fn).float().view(m, inp // BLOCK, BLOCK) * scales[:, :m].t()[..., None]).view(m, inp)
    exact = x_quantised @ weight_f32.t()
    relative = ((y[:m].float() - exact).abs().max() / exact.abs().max()).item()
    dense = ((y[:m].float() - x.float() @ weight_f32.t()).abs().max() / exact.abs().max()).item()
    print(f"fp8_lt_gemm {shape} M={m}: max |y - xq·Wᵀ| / max |xq·Wᵀ| = {relative:.2e} (against the unquantised x: {dense:.2e})",
          flush=True)
    assert relative < 2 ** -6, "block-scaled GEMM disagrees with the product of its quantised operands"
    lt_ms = native.time_ms(lt)
    quantize_ms = native.time_ms(quantize)
    flops = 2 * m * inp * out
    native.report("fp8_lt_gemm", f"{shape} M={m}", lt_ms, bf16_ms, flops=flops)
    tflops = flops / lt_ms / 1e9
    fp8_peak = native.peaks()["fp8_tflops"] or float("nan")
    print(f"FP8PEAK fp8_lt_gemm {shape} M={m}: {tflops:.1f} TFLOP/s = {tflops / fp8_peak:.3f} of the FP8 peak "
          f"({fp8_peak:.0f}); the quantisation takes {quantize_ms:.4f} of {lt_ms:.4f} ms", flush=True)


def random_fp8(out, inp):
    w = torch.randint(0, 256, (out, inp), dtype=torch.uint8, device="cuda")
    w[(w & 0x7F) == 0x7F] = 0  # no NaN codes
    s = torch.rand((out + BLOCK - 1) // BLOCK, (inp + BLOCK - 1) // BLOCK, device="cuda") * 1e-3 + 1e-4
    return w, s


def main():
    torch.manual_seed(0)
    lt_available = lib.mlnode_fp8_block_gemm_available(torch.cuda.current_device()) == 0
    if not lt_available:
        print(f"fp8_lt_gemm skipped: {lib.mlnode_last_error().decode()}", flush=True)
    mma_available = lib.mlnode_fp8_linear_mma_available(torch.cuda.current_device()) == 0
    if not mma_available:
        print(f"fp8_linear_mma skipped: {lib.mlnode_last_error().decode()}", flush=True)
    for out, inp in SHAPES:
        shape = f"[{inp}->{out}]"
        w, s = random_fp8(out, inp)
        expanded = s.repeat_interleave(BLOCK, 0)[:out].repeat_interleave(BLOCK, 1)[:, :inp].contiguous()
        dense = torch.empty(out, inp, dtype=torch.bfloat16, device="cuda")

        def torch_dequantize():
            return (w.view(torch.float8_e4m3fn).float() * expanded).to(torch.bfloat16)

        dequantize(w, s, dense)
        reference = torch_dequantize()
        mismatches = (dense.view(torch.int16) != reference.view(torch.int16)).sum().item()
        print(f"dequantize {shape}: {mismatches} bf16 values differ from torch", flush=True)
        assert mismatches == 0
        native.report("fp8_dequantize", shape, native.time_ms(lambda: dequantize(w, s, dense)), native.time_ms(torch_dequantize),
                      bytes_moved=out * inp * 3)

        weight_f32 = None
        fused_wins = []
        mma_times = []
        for m in ROWS:
            x = torch.randn(m, inp, dtype=torch.bfloat16, device="cuda")
            flops = 2 * m * inp * out
            bf16_ms = native.time_ms(lambda: F.linear(x, dense))
            scratch = torch.empty_like(dense)

            def dequantize_matmul():
                dequantize(w, s, scratch)
                return F.linear(x, scratch)

            dense_ms = native.time_ms(dequantize_matmul)
            native.report("fp8_dequantize_matmul", f"{shape} M={m}", dense_ms, bf16_ms, flops=flops)
            if (lt_available and m in LT_ROWS) or (mma_available and m in MMA_ROWS):
                if weight_f32 is None:
                    weight_f32 = w.view(torch.float8_e4m3fn).float() * expanded
            if lt_available and m in LT_ROWS:
                lt_gemm_rows(m, inp, out, w, s, weight_f32, x, bf16_ms, shape)
            if mma_available and m in MMA_ROWS:
                mma_times.append((m, *mma_rows(m, inp, out, w, s, weight_f32, dense, x, shape)))
            if m > MAX_ROWS:
                continue
            y = torch.empty(m, out, dtype=torch.bfloat16, device="cuda")
            fused(x, w, s, y)
            exact = x.float() @ (w.view(torch.float8_e4m3fn).float() * expanded).t()
            relative = ((y.float() - exact).abs().max() / exact.abs().max()).item()
            print(f"fused {shape} M={m}: max |y - x·Wᵀ| / max |x·Wᵀ| = {relative:.2e}", flush=True)
            assert relative < 2 ** -7, "fused GEMM disagrees with the float32 product beyond bf16 rounding"
            fused_ms = native.time_ms(lambda: fused(x, w, s, y))
            native.report("fp8_linear_fused", f"{shape} M={m}", fused_ms, bf16_ms,
                          bytes_moved=out * inp + s.numel() * 4 + m * (inp + out) * 2, flops=flops)
            fused_wins.append((m, fused_ms < dense_ms))
        threshold = 0
        for m, wins in fused_wins:
            if not wins:
                break
            threshold = m
        print(f"THRESHOLD {shape}: fused beats dequantise + F.linear up to M = {threshold}", flush=True)
        if mma_times:
            over_bf16 = ", ".join(f"{m}: {bf16 / ours:.2f}x" for m, ours, bf16, _ in mma_times)
            over_fused = ", ".join(f"{m}: {fused_ms / ours:.2f}x" for m, ours, _, fused_ms in mma_times if fused_ms is not None)
            print(f"MMA {shape}: tensor-core kernel over bf16 F.linear at M = {over_bf16}; over the fused kernel at M = {over_fused}",
                  flush=True)


if __name__ == "__main__":
    with torch.no_grad():
        main()

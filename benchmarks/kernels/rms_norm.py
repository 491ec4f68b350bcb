"""RMSNorm kernel vs the same formulation in PyTorch eager (Qwen's: float32 mean of squares, rsqrt, cast,
scale), on PoC-batch hidden rows and per-head q/k rows. bytes = read x + write y (+ the weight, negligible)."""
import ctypes, os, sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import native

lib = native.library()


def eager(x, w, eps):
    x32 = x.float()
    return w * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def ours(x, w, eps):
    y = torch.empty_like(x)
    native.check(lib, lib.mlnode_rms_norm(native.ptr(x), native.ptr(w), native.ptr(y), ctypes.c_int64(x.numel() // x.shape[-1]),
                                          ctypes.c_int32(x.shape[-1]), ctypes.c_float(eps), native.DTYPE[x.dtype], native.stream()), "rms_norm")
    return y


for rows, width in [(32 * 1024, 4096), (32 * 1024 * 32, 128), (64, 4096)]:
    x = torch.randn(rows, width, device="cuda", dtype=torch.bfloat16)
    w = torch.rand(width, device="cuda", dtype=torch.bfloat16) + 0.5
    diff = (ours(x, w, 1e-6).float() - eager(x, w, 1e-6).float()).abs().max().item()
    print(f"rms_norm [{rows}, {width}] bf16: max |ours - eager| = {diff:.3g}")
    native.report("rms_norm", f"[{rows},{width}] bf16", native.time_ms(lambda: ours(x, w, 1e-6)),
                  native.time_ms(lambda: eager(x, w, 1e-6)), bytes_moved=2 * x.numel() * x.element_size())

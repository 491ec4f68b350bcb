"""Host time of scaled_dot_product_attention per call for decoder-like shapes: a new key length each call, first on
this thread, again, and on a new thread; then per backend. Shows the cost of cuDNN attention plans (benchmarks/README.md).
Run on the GPU machine: python3 benchmarks/sdpa_plans.py"""
import torch, time, threading
import torch.nn.functional as F
print(torch.__version__, "cudnn_sdp", torch.backends.cuda.cudnn_sdp_enabled(), "flash", torch.backends.cuda.flash_sdp_enabled(), "mem", torch.backends.cuda.mem_efficient_sdp_enabled())
P, H, D = 448, 20, 64
def run(B, label, lengths):
    cache = torch.randn(B, H, P, D, device="cuda", dtype=torch.bfloat16)
    q = torch.randn(B, H, 1, D, device="cuda", dtype=torch.bfloat16)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for S in lengths:
        k = cache.narrow(2, 0, S)
        F.scaled_dot_product_attention(q, k, k)
    host = time.perf_counter() - t
    torch.cuda.synchronize()
    print(f"{label:40s} B={B} calls={len(lengths)} host {host*1e6/len(lengths):8.1f} us/call")
run(1, "first time shapes", range(5, 105))
run(1, "same shapes again, same thread", range(5, 105))
th = threading.Thread(target=run, args=(1, "same shapes, new thread", range(5, 105))); th.start(); th.join()
run(16, "B=16 new shapes", range(5, 105))
run(16, "B=16 again", range(5, 105))
from torch.nn.attention import sdpa_kernel, SDPBackend
for be in [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH]:
    try:
        with sdpa_kernel([be]):
            run(8, f"only {be.name} new shapes", range(105, 205))
            run(8, f"only {be.name} again", range(105, 205))
    except Exception as e: print(be, "failed", str(e)[:100])

"""What every kernel benchmark shares: libmlnode_kernels loaded with ctypes (MLNODE_KERNELS: the file or
its folder), torch tensors passed as device pointers on PyTorch's current stream, CUDA-event timing,
and one RESULT line per kernel so tools/gpu-check can collect them.

A benchmark script imports this, times its kernel and the equivalent PyTorch ops on the same inputs in
the same process, and calls `report(...)`.
"""
import ctypes, json, os

import torch

# Element types as the ABI numbers them (libtorch's ScalarType values).
DTYPE = {torch.uint8: 0, torch.int32: 3, torch.int64: 4, torch.float16: 5, torch.float32: 6, torch.bfloat16: 15}

# Dense HBM bandwidth and bf16 tensor-core peak of the GPUs we report on (datasheet figures).
PEAKS = {
    "H100 80GB HBM3": {"hbm_gbs": 3350.0, "bf16_tflops": 989.0, "fp8_tflops": 1979.0},
    "H200": {"hbm_gbs": 4800.0, "bf16_tflops": 989.0, "fp8_tflops": 1979.0},
    "A100-SXM4-80GB": {"hbm_gbs": 2039.0, "bf16_tflops": 312.0, "fp8_tflops": 0.0},
}


def library() -> ctypes.CDLL:
    path = os.environ.get("MLNODE_KERNELS", "build/libmlnode_kernels.so")
    if os.path.isdir(path):
        path = os.path.join(path, "libmlnode_kernels.so")
    lib = ctypes.CDLL(path)
    lib.mlnode_last_error.restype = ctypes.c_char_p
    return lib


def check(lib: ctypes.CDLL, status: int, what: str) -> None:
    if status != 0:
        raise RuntimeError(f"{what}: status {status}: {lib.mlnode_last_error().decode()}")


def ptr(t: torch.Tensor) -> ctypes.c_void_p:
    assert t.is_contiguous(), "kernels take contiguous tensors"
    return ctypes.c_void_p(t.data_ptr())


def stream() -> ctypes.c_void_p:
    return ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)


def time_ms(fn, warmup: int = 3, iters: int = 20) -> float:
    """Median-free mean of `iters` calls after `warmup`, timed with CUDA events on the current stream."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


def time_graph_ms(fn, iters: int = 20) -> float:
    """Mean GPU time of one call of `fn`, replayed from a CUDA graph of `iters` calls: without the host's launch
    cost between calls, which for kernels of a few microseconds would be what time_ms measures. `fn` runs once
    first, outside the capture, so first-call set-up (function attributes, caches) is not captured."""
    fn()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(iters):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    graph.replay()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


def peaks() -> dict:
    name = torch.cuda.get_device_name()
    for key, value in PEAKS.items():
        if key in name:
            return value
    return {"hbm_gbs": float("nan"), "bf16_tflops": float("nan"), "fp8_tflops": float("nan")}


def report(kernel: str, shape: str, ours_ms: float, torch_ms: float, bytes_moved: float = 0.0, flops: float = 0.0) -> None:
    """Prints one RESULT line: times, speed-up over PyTorch, and the fraction of the GPU's HBM bandwidth
    (memory-bound kernels, `bytes_moved` = bytes read + written once) or of its peak FLOP/s."""
    p = peaks()
    row = {"kernel": kernel, "shape": shape, "ours_ms": round(ours_ms, 4), "torch_ms": round(torch_ms, 4),
           "speedup": round(torch_ms / ours_ms, 2), "gpu": torch.cuda.get_device_name()}
    if bytes_moved:
        gbs = bytes_moved / ours_ms / 1e6
        row |= {"gb_s": round(gbs, 1), "hbm_fraction": round(gbs / p["hbm_gbs"], 3)}
    if flops:
        tflops = flops / ours_ms / 1e9
        row |= {"tflops": round(tflops, 1), "bf16_peak_fraction": round(tflops / p["bf16_tflops"], 3)}
    print("RESULT " + json.dumps(row), flush=True)

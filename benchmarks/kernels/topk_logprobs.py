"""Fused top-k logprobs (kernels/topk_logprobs.cu) against PyTorch's log_softmax + topk + gather on the same
logits: B in {1, 8, 64, 256} rows (decode steps) and 2048 (a teacher-forced replay scores every position of a
completion at once) of a Qwen-sized vocabulary, float32 and bfloat16 logits, k = 20, the chosen
token of every other row given and the rest the argmax. Bytes moved = B·V·element size (the logits, read once).
Both sides are timed as CUDA graph replays (native.time_graph_ms): ours takes two launches of a few microseconds,
which a host loop of ctypes calls could not keep fed; the host-launched time of ours is printed next to it.

Also checks the two agree: float32 ids exactly (the logits are built without ties), values rank by
rank (tie order aside, the k best values are the same for any correct top-k), and the kernel's ids point at
its values in PyTorch's log_softmax. Prints the largest differences.

Run from the repository root: MLNODE_KERNELS=build python3 benchmarks/kernels/topk_logprobs.py
"""
import ctypes, os, sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import native  # noqa: E402

VOCAB, K = 151936, 20
TOLERANCE = 2e-5  # fp32 summation order and rounding of max + log(sum) at magnitudes up to ~64 (see TopkLogprobsTests)

lib = native.library()
lib.mlnode_topk_logprobs.restype = ctypes.c_int
lib.mlnode_topk_logprobs.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
                                     ctypes.c_void_p, ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                     ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
lib.mlnode_topk_logprobs_scratch_bytes.restype = ctypes.c_int
lib.mlnode_topk_logprobs_scratch_bytes.argtypes = [ctypes.c_int64, ctypes.c_int32, ctypes.POINTER(ctypes.c_int64)]


def scratch_for(rows):
    """The row slices' partial results, allocated once per shape (the C# binding gets them from libtorch's cache)."""
    size = ctypes.c_int64()
    native.check(lib, lib.mlnode_topk_logprobs_scratch_bytes(rows, K, ctypes.byref(size)), "mlnode_topk_logprobs_scratch_bytes")
    return torch.empty(size.value, dtype=torch.uint8, device="cuda")


def ours(logits, chosen, out, scratch):
    values, ids, chosen_logprob, argmax = out
    status = lib.mlnode_topk_logprobs(native.ptr(logits), native.DTYPE[logits.dtype], logits.shape[0], logits.shape[1], None,
                                      native.ptr(chosen), K, native.ptr(values), native.ptr(ids), native.ptr(chosen_logprob),
                                      native.ptr(argmax), native.ptr(scratch), scratch.numel(), native.stream())
    native.check(lib, status, "mlnode_topk_logprobs")
    return out


def reference(logits, chosen):
    logprobs = logits.float().log_softmax(-1)
    values, ids = logprobs.topk(K)
    token = torch.where(chosen < 0, ids[:, 0], chosen)
    return values, ids, logprobs.gather(1, token[:, None])[:, 0], ids[:, 0], logprobs


def main():
    torch.manual_seed(0)
    for dtype in (torch.float32, torch.bfloat16):
        for rows in (1, 8, 64, 256, 2048):
            # Distinct float32 logits in [-30, 30]: a random permutation per row through a logistic quantile.
            order = torch.rand(rows, VOCAB, dtype=torch.float64, device="cuda").argsort(-1)
            logits = (2.5 * torch.logit((order + 0.5) / VOCAB)).float().to(dtype)
            chosen = torch.where(torch.arange(rows, device="cuda") % 2 == 0, torch.randint(0, VOCAB, (rows,), device="cuda"), -1)
            out = (torch.empty(rows, K, device="cuda"), torch.empty(rows, K, dtype=torch.int64, device="cuda"),
                   torch.empty(rows, device="cuda"), torch.empty(rows, dtype=torch.int64, device="cuda"))

            scratch = scratch_for(rows)
            values, ids, chosen_logprob, argmax = ours(logits, chosen, out, scratch)
            r_values, r_ids, r_chosen, r_argmax, logprobs = reference(logits, chosen)
            torch.cuda.synchronize()
            value_diff = (values - r_values).abs().max().item()
            chosen_diff = (chosen_logprob - r_chosen).abs().max().item()
            self_diff = (logprobs.gather(1, ids) - values).abs().max().item()
            print(f"{dtype} B={rows}: max |values - torch| {value_diff:.2e}, chosen {chosen_diff:.2e}, "
                  f"torch logprobs at our ids {self_diff:.2e}", flush=True)
            assert value_diff <= TOLERANCE and chosen_diff <= TOLERANCE and self_diff <= TOLERANCE
            assert torch.equal(logprobs.gather(1, argmax[:, None])[:, 0], logprobs.max(-1).values)
            if dtype == torch.float32:
                assert torch.equal(ids, r_ids), "ids differ"
                assert torch.equal(argmax, r_argmax), "argmax differs"

            again = tuple(t.clone() for t in out)
            ours(logits, chosen, again, scratch)
            assert all(torch.equal(a, b) for a, b in zip(out, again)), "a second call gave other bits"

            ours_ms = native.time_graph_ms(lambda: ours(logits, chosen, out, scratch))
            torch_ms = native.time_graph_ms(lambda: reference(logits, chosen))
            print(f"{dtype} B={rows}: ours host-launched {native.time_ms(lambda: ours(logits, chosen, out, scratch)) * 1000:.1f} us, "
                  f"in a graph {ours_ms * 1000:.1f} us", flush=True)
            native.report("topk_logprobs", f"B={rows} V={VOCAB} k={K} {str(dtype).removeprefix('torch.')}", ours_ms, torch_ms,
                          bytes_moved=rows * VOCAB * logits.element_size())


if __name__ == "__main__":
    main()

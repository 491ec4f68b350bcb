"""PoC v2 artifacts of a batch (kernels/poc_artifacts.cu) against the same steps in PyTorch: normalise each
hidden row, pick k dimensions by seeded murmur3 scores (top-k, in the reference order), k-1 Householder
reflections, normalise, float16. The pick seeds and Haar unit vectors are host work in both paths (SHA-256
and tiny normal streams), so they are made once up front and only the device work is timed.

Run from the repository root on a GPU: MLNODE_KERNELS=build python3 benchmarks/kernels/poc_artifacts.py
"""
import ctypes
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import native  # noqa: E402

MASK = 0xFFFFFFFF
D, K = 4096, 12
BATCHES = [32, 64, 128, 256, 512, 1024]


def rotl(x: torch.Tensor, r: int) -> torch.Tensor:
    return ((x << r) | (x >> (32 - r))) & MASK


def mix(key: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    """Murmur3.Mix on int64 tensors holding uint32 values: products wrap mod 2^64, and their low 32 bits,
    all that the mask keeps, are those of the uint32 product."""
    k = rotl((key * 0xCC9E2D51) & MASK, 15)
    k = (k * 0x1B873593) & MASK
    h = rotl(seed ^ k, 13)
    h = (h * 5 + 0xE6546B64) & MASK
    h = h ^ (h >> 16)
    h = (h * 0x85EBCA6B) & MASK
    h = h ^ (h >> 13)
    h = (h * 0xC2B2AE35) & MASK
    return h ^ (h >> 16)


def torch_artifacts(hidden: torch.Tensor, seeds: torch.Tensor, haar: torch.Tensor):
    """The reference's steps, batched: artifacts float16 [B, k], picked dimensions int32 [B, k], finite [B]."""
    y = hidden.float()
    finite = torch.isfinite(y).all(dim=1)
    y = y / (torch.linalg.vector_norm(y, dim=1, keepdim=True) + 1e-8)
    scores = mix(torch.arange(y.shape[1], device=y.device)[None, :], seeds.long()[:, None] & MASK)
    # DimensionPick's order: the k-1 smallest scores in ascending index order, then the k-th smallest.
    smallest = torch.topk(scores, K, dim=1, largest=False, sorted=True).indices
    idx = torch.cat([smallest[:, : K - 1].sort(dim=1).values, smallest[:, K - 1 :]], dim=1)
    x = torch.gather(y, 1, idx)
    for step in range(K - 1):
        w = haar[:, step, :]
        x = x - 2 * (x * w).sum(dim=1, keepdim=True) * w
    x = x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + 1e-8)
    return x.half(), idx.int(), finite


def main() -> None:
    lib = native.library()
    encode = lib.mlnode_poc_artifacts_encode
    encode.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64, ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p,
                       ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    torch.manual_seed(0)
    for batch in BATCHES:
        hidden = torch.randn(batch, D, device="cuda").to(torch.bfloat16)
        seeds = torch.randint(0, 2**32, (batch,), dtype=torch.int64, device="cuda").to(torch.int32)  # uint32 bits
        haar = torch.randn(batch, K - 1, K, device="cuda")
        haar = haar / haar.norm(dim=2, keepdim=True)
        artifacts = torch.empty(batch, K, dtype=torch.float16, device="cuda")
        indices = torch.empty(batch, K, dtype=torch.int32, device="cuda")
        finite = torch.empty(batch, dtype=torch.bool, device="cuda")

        def ours():
            native.check(lib, encode(native.ptr(hidden), native.DTYPE[hidden.dtype], batch, D, K, native.ptr(seeds),
                                     native.ptr(haar), native.ptr(artifacts), native.ptr(indices), native.ptr(finite),
                                     native.stream()), "mlnode_poc_artifacts_encode")

        with torch.inference_mode():
            ours()
            want_artifacts, want_indices, want_finite = torch_artifacts(hidden, seeds, haar)
            torch.cuda.synchronize()
            assert torch.equal(indices, want_indices), "picked dimensions differ from torch.topk's"
            assert torch.equal(finite, want_finite), "finite flags differ"
            diff = (artifacts.float() - want_artifacts.float()).abs().max().item()
            # Float16 values below 1 are 2^-11 apart at most; torch sums in float32, the kernel in double.
            print(f"B={batch}: max |ours - torch| = {diff:.3g}", flush=True)
            assert diff <= 2.0 ** -11, f"artifacts differ by {diff}"

            ours_ms = native.time_ms(ours)
            torch_ms = native.time_ms(lambda: torch_artifacts(hidden, seeds, haar))
        moved = hidden.numel() * hidden.element_size() + seeds.numel() * 4 + haar.numel() * 4 \
            + artifacts.numel() * 2 + indices.numel() * 4 + finite.numel()
        native.report("poc_artifacts", f"B={batch} d={D} k={K} bf16", ours_ms, torch_ms, bytes_moved=moved)


if __name__ == "__main__":
    main()

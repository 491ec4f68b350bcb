"""Wan2.2 PoC expert routing (kernels/wan_routing.cu) against the equivalent PyTorch ops on the same inputs:
- permute / unpermute of B = 8…64 float32 latent rows [16, 21, 60, 104] (480p, 8 MB each) against
  index_select / index_copy_; bytes moved = read + write = 2·B·row bytes;
- the stable grouping of B = 64 experts against torch.argsort(stable=True), and the derived timesteps and
  experts against a Python implementation of docs/wan-poc-routing.md (correctness only).

Run from the repository root: MLNODE_KERNELS=build python3 benchmarks/kernels/wan_routing.py
"""
import ctypes
import hashlib
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import native  # noqa: E402

GRID = [999, 997, 995, 993, 990, 988, 985, 982, 979, 976, 972, 969, 965, 961, 956, 952, 947, 941, 936, 929,
        922, 915, 907, 898, 888, 877, 865, 852, 837, 819, 799, 776, 749, 717, 678, 631, 571, 492, 386, 235]
BOUNDARY = 875
ROW = (16, 21, 60, 104)


def mix(key: int, seed: int) -> int:
    mask = 0xFFFFFFFF
    rotl = lambda x, r: ((x << r) | (x >> (32 - r))) & mask  # noqa: E731
    k = rotl((key * 0xCC9E2D51) & mask, 15) * 0x1B873593 & mask
    h = (rotl(seed ^ k, 13) * 5 + 0xE6546B64) & mask
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    return h ^ (h >> 16)


def seed32(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def bind(lib: ctypes.CDLL) -> None:
    p, i32, i64 = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64
    lib.mlnode_wan_routing_derive.argtypes = [p, i32, ctypes.POINTER(i32), i32, i32, p, p, p]
    lib.mlnode_wan_routing_group.argtypes = [p, i32, p, p, p]
    lib.mlnode_wan_routing_permute.argtypes = [p, p, p, i32, i64, i32, p]
    lib.mlnode_wan_routing_unpermute.argtypes = [p, p, p, i32, i64, i32, p]


def derive(lib, seeds: list) -> tuple:
    batch = len(seeds)
    seed_bits = torch.tensor([s - (1 << 32) if s >= 1 << 31 else s for s in seeds], dtype=torch.int32, device="cuda")
    timesteps = torch.empty(batch, dtype=torch.int64, device="cuda")
    experts = torch.empty(batch, dtype=torch.int64, device="cuda")
    grid = (ctypes.c_int32 * len(GRID))(*GRID)
    native.check(lib, lib.mlnode_wan_routing_derive(native.ptr(seed_bits), batch, grid, len(GRID), BOUNDARY,
                                                    native.ptr(timesteps), native.ptr(experts), native.stream()),
                 "wan_routing_derive")
    return timesteps, experts


def main() -> None:
    lib = native.library()
    bind(lib)

    seeds = [seed32(f"TEST_BLOCK_test_pub_keys_nonce_{n}_wan_t") for n in range(64)]
    timesteps, experts = derive(lib, seeds)
    expected_t = [GRID[(mix(0, s) * len(GRID)) >> 32] for s in seeds]
    assert timesteps.tolist() == expected_t, "derived timesteps differ from the Python implementation"
    assert experts.tolist() == [0 if t >= BOUNDARY else 1 for t in expected_t], "derived experts differ"
    print(f"# derive: 64 nonces agree with the Python implementation; high-noise rows {experts.tolist().count(0)}", flush=True)

    order = torch.empty(64, dtype=torch.int64, device="cuda")
    counts = torch.empty(2, dtype=torch.int64, device="cuda")

    def group():
        native.check(lib, lib.mlnode_wan_routing_group(native.ptr(experts), 64, native.ptr(order), native.ptr(counts),
                                                       native.stream()), "wan_routing_group")

    group()
    assert torch.equal(order, torch.argsort(experts, stable=True)), "grouping differs from a stable argsort"
    native.report("wan_routing_group", "B=64", native.time_ms(group),
                  native.time_ms(lambda: torch.argsort(experts, stable=True)))

    for batch in (8, 16, 32, 64):
        rows = torch.randn(batch, *ROW, device="cuda")
        _, batch_experts = derive(lib, seeds[:batch])
        batch_order = torch.argsort(batch_experts, stable=True)
        grouped = torch.empty_like(rows)
        restored = torch.empty_like(rows)
        row_elements = rows[0].numel()
        dtype = native.DTYPE[rows.dtype]

        def permute():
            native.check(lib, lib.mlnode_wan_routing_permute(native.ptr(rows), native.ptr(grouped), native.ptr(batch_order),
                                                             batch, row_elements, dtype, native.stream()), "permute")

        def unpermute():
            native.check(lib, lib.mlnode_wan_routing_unpermute(native.ptr(grouped), native.ptr(restored),
                                                               native.ptr(batch_order), batch, row_elements, dtype,
                                                               native.stream()), "unpermute")

        permute()
        unpermute()
        selected = rows.index_select(0, batch_order)
        copied = torch.empty_like(rows).index_copy_(0, batch_order, grouped)
        print(f"# B={batch}: permute max |diff| {(grouped - selected).abs().max().item():.1e}, "
              f"unpermute max |diff| {(restored - copied).abs().max().item():.1e}", flush=True)
        assert torch.equal(grouped, selected) and torch.equal(restored, copied) and torch.equal(restored, rows)

        bytes_moved = 2 * rows.numel() * rows.element_size()
        shape = f"B={batch} x {'x'.join(map(str, ROW))} f32"
        native.report("wan_routing_permute", shape, native.time_ms(permute),
                      native.time_ms(lambda: torch.index_select(rows, 0, batch_order, out=selected)), bytes_moved=bytes_moved)
        native.report("wan_routing_unpermute", shape, native.time_ms(unpermute),
                      native.time_ms(lambda: copied.index_copy_(0, batch_order, grouped)), bytes_moved=bytes_moved)


if __name__ == "__main__":
    main()

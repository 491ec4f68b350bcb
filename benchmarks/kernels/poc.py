"""PoC v2 kernels against the reference's PyTorch code on the same inputs, same run:

- input generation (kernels/poc_inputs.cu, strong and weak seeding) vs the batched torch generator of
  benchmarks/poc_eager.py, B=32 nonces × L=1024 × d=4096 written as bf16 (bytes = output bytes);
- the Householder reflection of hidden state and residual in place (kernels/poc_householder.cu) vs the hook's
  expression `h - 2 * (h @ v).unsqueeze(-1) * v` on each, T=32×1024 rows × d=4096 bf16 (bytes = read + write of
  both tensors).

The torch generator uses libm/CUDA log, sin and cos, the kernel the portable ones the C# reference uses, so
the two agree to a few float32 ulps, i.e. to the same bf16 value or the adjacent one; the checks print the
largest difference and the fraction of elements that differ.

usage: MLNODE_KERNELS=build/libmlnode_kernels.so python3 benchmarks/kernels/poc.py
"""
import ctypes, hashlib, os, sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import native  # noqa: E402
from poc_eager import BH, PK, inputs, normal, seed32  # noqa: E402

B, L, D = 32, 1024, 4096
BF16_STEP = 2.0 ** -7  # largest spacing of bf16 values relative to their magnitude


def signed(words):
    return [w - (1 << 32) if w >= 1 << 31 else w for w in words]


def strong_seeds(nonces):
    """The eight big-endian words of SHA-256(f"{BH}_{PK}_nonce{n}") per nonce, as poc_eager.inputs takes them."""
    seeds = []
    for n in nonces:
        digest = hashlib.sha256(f"{BH}_{PK}_nonce{n}".encode()).digest()
        seeds += [int.from_bytes(digest[4 * j:4 * j + 4], "big") for j in range(8)]
    return seeds


def compare(what, ours, theirs, bound):
    diff = (ours.float() - theirs.float()).abs()
    print(f"{what}: max |ours - torch| = {diff.max().item():.3e}, elements that differ: {(diff > 0).float().mean().item():.2e}", flush=True)
    assert bool((diff <= bound).all()), f"{what}: a difference exceeds the stated bound"


def bench_inputs(lib):
    nonces = list(range(1, 2 * B, 2))
    out = torch.empty(B, L, D, dtype=torch.bfloat16, device="cuda")
    dtype = native.DTYPE[torch.bfloat16]

    for strong in (True, False):
        words = strong_seeds(nonces) if strong else [seed32(f"{BH}_{PK}_nonce{n}") for n in nonces]
        seeds = torch.tensor(signed(words), dtype=torch.int32, device="cuda")

        def ours():
            native.check(lib, lib.mlnode_poc_inputs_fill(native.ptr(seeds), int(strong), B, L, D, native.ptr(out), dtype, native.stream()),
                         "mlnode_poc_inputs_fill")

        if strong:
            def reference():
                return inputs(nonces, L, D, "cuda").to(torch.bfloat16)
        else:
            weak = torch.tensor(words, dtype=torch.int64, device="cuda")

            def reference():
                return normal(weak, L * D).view(B, L, D).to(torch.bfloat16)

        ours()
        expected = reference()
        compare(f"inputs strong={strong}", out, expected, BF16_STEP * expected.float().abs())
        del expected
        torch.cuda.empty_cache()
        native.report(f"poc_inputs_{'strong' if strong else 'weak'}", f"B={B} L={L} d={D} bf16",
                      native.time_ms(ours), native.time_ms(reference, warmup=1, iters=3), bytes_moved=B * L * D * 2)


def bench_householder(lib):
    torch.manual_seed(0)
    rows = B * L
    v = torch.randn(D, device="cuda")
    v = (v / v.norm()).to(torch.bfloat16)
    hidden = (3 * torch.randn(rows, D, device="cuda")).to(torch.bfloat16)
    residual = (10 * torch.randn(rows, D, device="cuda")).to(torch.bfloat16)
    dtype = native.DTYPE[torch.bfloat16]

    def ours(h, r):
        native.check(lib, lib.mlnode_poc_householder_reflect(native.ptr(h), native.ptr(r), native.ptr(v), rows, D, dtype, native.stream()),
                     "mlnode_poc_householder_reflect")

    def reference(h, r):
        return h - 2 * (h @ v).unsqueeze(-1) * v, r - 2 * (r @ v).unsqueeze(-1) * v

    def float32_dot(h, r):
        # The kernel's definition: the dot accumulated in float32 and rounded once to bf16, then libtorch's
        # elementwise roundings. cuBLAS's bf16 GEMV may reduce in bf16 (PyTorch allows it by default), so the
        # plain expression can sit several dot steps away on long rows: reported, not asserted.
        def one(x):
            return x - 2 * (x.float() @ v.float()).to(torch.bfloat16).unsqueeze(-1) * v
        return one(h), one(r)

    expected, exact_dot = reference(hidden, residual), float32_dot(hidden, residual)
    ours(hidden, residual)
    for name, got, want, plain in (("hidden", hidden, exact_dot[0], expected[0]), ("residual", residual, exact_dot[1], expected[1])):
        # One bf16 step of the result, plus the product's change when the float32 dot, summed in another
        # order, rounds to the neighbouring bf16 value.
        dot = (want.float() @ v.float()).abs()  # |x·v| is the same before and after the reflection, up to sign
        compare(f"householder {name}", got, want, BF16_STEP * (want.float().abs() + 2 * (2 * dot.unsqueeze(-1) * v.float().abs())))
        print(f"householder {name}: max |ours - (h - 2(h@v)v with cuBLAS's bf16 dot)| = {(got.float() - plain.float()).abs().max().item():.3e}", flush=True)
    del exact_dot
    del expected
    native.report("poc_householder", f"T={rows} d={D} bf16 hidden+residual",
                  native.time_ms(lambda: ours(hidden, residual)), native.time_ms(lambda: reference(hidden, residual)),
                  bytes_moved=2 * 2 * rows * D * 2)


def main():
    lib = native.library()
    lib.mlnode_poc_inputs_fill.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32,
                                           ctypes.c_void_p, ctypes.c_int32, ctypes.c_void_p]
    lib.mlnode_poc_householder_reflect.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                                   ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p]
    with torch.inference_mode():
        bench_inputs(lib)
        bench_householder(lib)


if __name__ == "__main__":
    main()

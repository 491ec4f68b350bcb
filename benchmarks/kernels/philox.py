"""Portable Philox noise (kernels/philox_noise.cu) against torch.randn with a CUDA generator on the same GPU,
for the Wan latent sizes: 17-frame test (499,200), 480p (2,096,640) and 720p (4,838,400) elements of float32.

The kernel launches the grid PyTorch uses on a 132-SM, 2048-threads-per-SM GPU (H100 SXM, H200), so it equals
torch.randn bit for bit there, and below one wave on any GPU; above one wave elsewhere the two differ (that is
the point of the kernel). Bytes moved = 4·numel (the noise is written once, nothing is read).

Run from the repository root: MLNODE_KERNELS=build python3 benchmarks/kernels/philox.py
"""
import ctypes
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import native  # noqa: E402

SEED = 42
SHAPES = {
    "16x5x60x104 (17 frames 480p)": (16, 5, 60, 104),
    "16x21x60x104 (480p)": (16, 21, 60, 104),
    "16x21x90x160 (720p)": (16, 21, 90, 160),
}


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.equal(a.view(torch.int32), b.view(torch.int32))


def main() -> None:
    lib = native.library()
    normal = lib.mlnode_philox_noise_normal
    normal.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_void_p]

    props = torch.cuda.get_device_properties(0)
    hopper_grid = props.multi_processor_count == 132 and props.max_threads_per_multi_processor == 2048
    print(f"# {props.name}: {props.multi_processor_count} SMs x {props.max_threads_per_multi_processor} threads; "
          f"torch.randn uses the kernel's grid here: {hopper_grid}", flush=True)

    generator = torch.Generator(device="cuda")

    def torch_randn(shape) -> torch.Tensor:
        generator.manual_seed(SEED)
        return torch.randn(shape, generator=generator, device="cuda", dtype=torch.float32)

    # Below one wave (5,120 elements) every GPU's grid is the kernel's: they must agree bit for bit anywhere.
    small = torch.empty(16, 5, 8, 8, device="cuda")
    native.check(lib, normal(native.ptr(small), small.numel(), SEED, 0, native.stream()), "philox_noise_normal")
    assert same_bits(small, torch_randn(small.shape)), "below one wave the kernel must equal torch.randn on any GPU"

    for label, shape in SHAPES.items():
        noise = torch.empty(shape, device="cuda")
        numel = noise.numel()

        def ours():
            native.check(lib, normal(native.ptr(noise), numel, SEED, 0, native.stream()), "philox_noise_normal")

        ours()
        reference = torch_randn(shape)
        exact = same_bits(noise, reference)
        max_diff = (noise - reference).abs().max().item()
        print(f"{label}: bit-exact with torch.randn on this GPU: {exact} (max |diff| {max_diff:.3e})", flush=True)
        if hopper_grid:
            assert exact, f"{label}: on a 132-SM Hopper the kernel must equal torch.randn bit for bit"

        # Same work for PyTorch without the allocation: normal_ is the kernel randn runs.
        native.report("philox_noise_normal", label, native.time_ms(ours),
                      native.time_ms(lambda: reference.normal_(generator=generator)), bytes_moved=4 * numel)


if __name__ == "__main__":
    main()

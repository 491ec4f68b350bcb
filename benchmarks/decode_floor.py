"""What a Qwen3-8B-shaped decode step costs on this GPU when only its GEMMs run, as one CUDA graph.

The floor for MLNode's decode step: 36 layers of packed q/k/v, o, packed gate/up and down GEMMs plus the LM head,
random bf16 weights, at batch 1 and 64, replayed from a CUDA graph (no launch overhead), with the HBM-bandwidth limit
of the same bytes next to it. Prints RESULT lines.
"""
import argparse

import torch

p = argparse.ArgumentParser()
p.add_argument("--layers", type=int, default=36)
p.add_argument("--batches", default="1,8,64")
p.add_argument("--blas", choices=["cublas", "cublaslt"], default="cublas", help="libtorch's preferred BLAS library for the GEMMs")
a = p.parse_args()
torch.backends.cuda.preferred_blas_library(a.blas)

d, heads, kv, hd, ff, vocab = 4096, 32, 8, 128, 12288, 151936
dev, dt = "cuda", torch.bfloat16
torch.manual_seed(0)
layers = [dict(qkv=torch.randn((heads + 2 * kv) * hd, d, device=dev, dtype=dt) * 0.02,
               o=torch.randn(d, heads * hd, device=dev, dtype=dt) * 0.02,
               gu=torch.randn(2 * ff, d, device=dev, dtype=dt) * 0.02,
               down=torch.randn(d, ff, device=dev, dtype=dt) * 0.02) for _ in range(a.layers)]
head = torch.randn(vocab, d, device=dev, dtype=dt) * 0.02
weight_bytes = sum(t.numel() * 2 for l in layers for t in l.values()) + head.numel() * 2


def step(x, packed):
    for l in layers:
        if packed:
            qkv = torch.nn.functional.linear(x, l["qkv"])
        else:
            qkv = torch.cat([torch.nn.functional.linear(x, w) for w in l["qkv"].split([heads * hd, kv * hd, kv * hd])], -1)
        x = x + torch.nn.functional.linear(qkv[:, : heads * hd], l["o"])
        gu = torch.nn.functional.linear(x, l["gu"])
        x = x + torch.nn.functional.linear(gu[:, :ff] * gu[:, ff:], l["down"])
    return torch.nn.functional.linear(x, head)


for b in [int(s) for s in a.batches.split(",")]:
    for packed in (True, False):
        x = torch.randn(b, d, device=dev, dtype=dt) * 0.1
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(2):
                step(x, packed)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            y = step(x, packed)
        for _ in range(3):
            g.replay()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        reps = 20
        for _ in range(reps):
            g.replay()
        end.record()
        torch.cuda.synchronize()
        ms = start.elapsed_time(end) / reps
        print(f"RESULT decode-floor blas={a.blas} batch={b} packed={packed} step_ms={ms:.3f} weights_gb={weight_bytes / 1e9:.2f} "
              f"hbm_fraction={weight_bytes / (ms / 1e3) / 3.35e12:.3f} tok_s={b * 1e3 / ms:.0f}")

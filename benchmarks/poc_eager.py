"""PoC v2 the way the reference node computes it: PyTorch eager, a transformers Qwen3 model with
random bf16 weights, forward hooks reflecting every decoder layer's output by its Householder vector,
and the batched torch implementation of the seeded inputs (murmur3 without the length step +
Box-Muller, halves concatenated). Prints a RESULT line comparable with `mlnode-bench poc`.

usage: python3 benchmarks/poc_eager.py [--layers 36] [--batch 32] [--seq-len 1024] [--batches 5]
"""
import argparse, hashlib, threading, time

import pynvml
import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

M = 0xFFFFFFFF
BH = "9F3A6C1E2B7D4058A1C3E5F708192A3B4C5D6E7F8091A2B3C4D5E6F708192A3B"
PK = "02ab34cd"


def seed32(s: str) -> int:
    return int(hashlib.sha256(s.encode()).hexdigest()[:8], 16)


def mix(keys: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
    """murmur3 x86_32 body for one block, no length step; int64 arithmetic masked to 32 bits."""
    k = (keys * 0xCC9E2D51) & M
    k = ((k << 15) | (k >> 17)) & M
    k = (k * 0x1B873593) & M
    h = seeds ^ k
    h = ((h << 13) | (h >> 19)) & M
    h = (h * 5 + 0xE6546B64) & M
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M
    h ^= h >> 16
    return h


def normal(seeds: torch.Tensor, n: int) -> torch.Tensor:
    """[S] seeds -> [S, n] standard normals (Box-Muller, the two halves concatenated)."""
    p = (n + 1) // 2
    idx = torch.arange(2 * p, device=seeds.device, dtype=torch.int64)
    u = mix(idx[None, :], seeds[:, None]).to(torch.float32) / 4294967296.0
    u1, u2 = u[:, :p].clamp_min(1e-10), u[:, p:]
    r = torch.sqrt(-2.0 * torch.log(u1))
    return torch.cat([r * torch.cos(6.2831855 * u2), r * torch.sin(6.2831855 * u2)], dim=1)[:, :n]


def inputs(nonces, seq_len, d, device):
    """Strong seeding (poc_stronger_rng): 8 sub-seeds from SHA-256, segments of ceil(L*d/8)."""
    total = seq_len * d
    seg = (total + 7) // 8
    seeds = []
    for n in nonces:
        digest = hashlib.sha256(f"{BH}_{PK}_nonce{n}".encode()).digest()
        seeds += [int.from_bytes(digest[4 * j:4 * j + 4], "big") for j in range(8)]
    z = normal(torch.tensor(seeds, dtype=torch.int64, device=device), seg).view(len(nonces), 8 * seg)[:, :total]
    return z.view(len(nonces), seq_len, d)


def artifacts(y, nonces, k=12):
    y = y.float()
    y = y / (y.norm(dim=-1, keepdim=True) + 1e-8)
    d = y.shape[-1]
    out = []
    j = torch.arange(d, device=y.device, dtype=torch.int64)
    for row, n in zip(y, nonces):
        scores = mix(j, torch.tensor(seed32(f"{BH}_{PK}_nonce_{n}_pick_{k}"), device=y.device))
        idx = torch.topk(-scores, k, sorted=False).indices
        x = row[idx]
        for step in range(k - 1):
            w = normal(torch.tensor([seed32(f"{BH}_{PK}_nonce_{n}_haar_hh_{k}_{step}")], device=y.device), k)[0]
            w = w / (w.norm() + 1e-30)
            x = x - 2 * (x @ w) * w
        out.append((x / (x.norm() + 1e-8)).half().cpu())
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=36)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--batches", type=int, default=5)
    a = ap.parse_args()
    dev = torch.device("cuda")
    cfg = Qwen3Config(hidden_size=4096, intermediate_size=12288, num_hidden_layers=a.layers, num_attention_heads=32,
                      num_key_value_heads=8, head_dim=128, vocab_size=151936, rms_norm_eps=1e-6, rope_theta=1e6,
                      tie_word_embeddings=False, max_position_embeddings=40960)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(1)
    with torch.device(dev):
        model = Qwen3ForCausalLM(cfg).to(torch.bfloat16).eval()
    d = cfg.hidden_size
    vecs = normal(torch.tensor([seed32(f"{BH}_layer_{i}_householder") for i in range(a.layers)], device=dev), d)
    vecs = (vecs / vecs.norm(dim=-1, keepdim=True)).to(torch.bfloat16)

    def hook(i):
        def reflect(module, args, output):
            h = output[0] if isinstance(output, tuple) else output
            h = h - 2 * (h @ vecs[i]).unsqueeze(-1) * vecs[i]
            return (h, *output[1:]) if isinstance(output, tuple) else h
        return reflect

    for i, layer in enumerate(model.model.layers):
        layer.register_forward_hook(hook(i))

    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], pynvml.nvmlDeviceGetMemoryInfo(handle).used // (1024 * 1024))
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    next_nonce = [1]

    def batch():
        nonces = list(range(next_nonce[0], next_nonce[0] + 2 * a.batch, 2))
        next_nonce[0] += 2 * a.batch
        with torch.inference_mode():
            x = inputs(nonces, a.seq_len, d, dev).to(torch.bfloat16)
            h = model.model(inputs_embeds=x).last_hidden_state[:, -1, :]
            return artifacts(h, nonces)

    batch()
    torch.cuda.synchronize()
    t = time.perf_counter()
    produced = sum(len(batch()) for _ in range(a.batches))
    torch.cuda.synchronize()
    s = time.perf_counter() - t
    stop.set()
    wpt = a.layers * (4096 * (4096 + 2 * 1024) + 4096 * 4096 + 3 * 4096 * 12288)
    att = a.layers * 2 * 2 * a.seq_len * (a.seq_len + 1) / 2 * 4096
    flops = a.batches * a.batch * (2 * wpt * a.seq_len + att)
    print(f"RESULT poc engine=pytorch-eager layers={a.layers} batch={a.batch} seq_len={a.seq_len} nonces={produced} seconds={s:.3f} "
          f"nonces_per_min={produced / s * 60:.1f} tflops={flops / s / 1e12:.1f} peak_gpu_mib={peak[0]} "
          f"torch_max_reserved_mib={torch.cuda.max_memory_reserved() // (1024 * 1024)}", flush=True)


if __name__ == "__main__":
    main()

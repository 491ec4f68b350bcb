"""The reference for `mlnode-bench llm`: transformers on the same Qwen3-8B shape with random bf16 weights.
Decode tokens/s with generate() at batch 1 and 64 (128-token prompts, 128 new tokens, greedy), and a
teacher-forced forward of 8 x 2048 tokens with the LM head.

usage: python3 benchmarks/llm_transformers.py [--layers 36]
"""
import argparse, time

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=36)
    a = ap.parse_args()
    cfg = Qwen3Config(hidden_size=4096, intermediate_size=12288, num_hidden_layers=a.layers, num_attention_heads=32,
                      num_key_value_heads=8, head_dim=128, vocab_size=151936, rms_norm_eps=1e-6, rope_theta=1e6,
                      tie_word_embeddings=False, max_position_embeddings=40960)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(1)
    with torch.device("cuda"):
        model = Qwen3ForCausalLM(cfg).to(torch.bfloat16).eval()

    def decode(batch):
        ids = torch.randint(0, cfg.vocab_size, (batch, 128), device="cuda")
        with torch.inference_mode():
            torch.cuda.synchronize(); t = time.perf_counter()
            model.generate(ids, max_new_tokens=1, min_new_tokens=1, do_sample=False, eos_token_id=None, pad_token_id=0)
            torch.cuda.synchronize(); first = time.perf_counter() - t
            t = time.perf_counter()
            model.generate(ids, max_new_tokens=128, min_new_tokens=128, do_sample=False, eos_token_id=None, pad_token_id=0)
            torch.cuda.synchronize(); total = time.perf_counter() - t
        return batch * 127 / (total - first)

    decode(1)
    c1, c64 = decode(1), decode(64)
    ids = torch.randint(0, cfg.vocab_size, (8, 2048), device="cuda")
    with torch.inference_mode():
        for _ in range(2): model(ids)
        torch.cuda.synchronize(); t = time.perf_counter()
        for _ in range(3): model(ids)
        torch.cuda.synchronize(); s = time.perf_counter() - t
    print(f"RESULT llm engine=transformers decode_c1_tok_s={c1:.1f} decode_c64_tok_s={c64:.1f} teacher_forced_tok_s={3 * 8 * 2048 / s:.0f} "
          f"peak_reserved_mib={torch.cuda.max_memory_reserved() >> 20}", flush=True)


if __name__ == "__main__":
    main()

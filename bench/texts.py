"""Benchmark: `experiment=texts` on n and 4n synthetic texts per label (two labels), in one run, with the time
of its parts (SBERT embedding, per-set measures, comparisons, figures). Prints one line per size and, last, one
JSON object with at least `seconds_n`, `seconds_4n`, `n`, `scaling_4x` (= seconds_4n / seconds_n; 4 is linear).
Targets (issue 13): 10,000 texts per label under 180 s on 2 CPU cores, scaling_4x <= 5.

    python bench/texts.py [--n 2500] [--words 40] [--seed 0] [--sbert-floor]

Texts: words drawn from the SBERT tokenizer's whole-word vocabulary (one word piece each, so `--words` sets the
SBERT cost), Zipf-distributed; label `b` is less diverse (steeper Zipf) and 1.3x longer, as aligned models are.
The SBERT model is loaded once before timing (its load is reported apart). SBERT measures of a set larger than
`experiment.sbert_max_texts` (2000) use a seeded sample of that many texts, so embedding, the floor of the cost,
stops growing there; `--sbert-floor` also times embedding every one of the 2 x 4n texts (`sbert_all_4n_s`).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from measure.config import ExperimentConfig, MeasureConfig, WandbConfig  # noqa: E402
from measure.embeddings import load_sbert  # noqa: E402
from measure.experiments import diversity, texts  # noqa: E402


def vocabulary(model) -> np.ndarray:
    """Whole English words of the SBERT tokenizer (alphabetic, 3+ letters): one word piece each."""
    return np.array(sorted(w for w in model.tokenizer.get_vocab() if w.isalpha() and w.isascii() and len(w) >= 3))


def synthetic(vocab: np.ndarray, n: int, words: int, zipf: float, length_scale: float, seed: int) -> list:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, vocab.size + 1) ** zipf
    vocab = vocab[rng.permutation(vocab.size)]  # which words are frequent: seeded
    lengths = rng.integers(max(1, int(words * length_scale / 2)), int(words * length_scale * 1.5) + 1, n)
    flat = rng.choice(vocab, int(lengths.sum()), p=weights / weights.sum())
    cuts = np.cumsum(lengths)[:-1]
    return [" ".join(chunk) + "." for chunk in np.split(flat, cuts)]


class Timer:
    """Wraps module functions to add up their wall time (the bench's view of where time goes)."""

    def __init__(self):
        self.seconds: dict = {}

    def wrap(self, module, name: str, label: str):
        original = getattr(module, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start

        setattr(module, name, timed)


def run_once(path: Path, out: Path, timer: Timer) -> float:
    cfg = MeasureConfig(experiment=ExperimentConfig(name="texts", texts_file=str(path)),
                        wandb=WandbConfig(mode="disabled"))
    out.mkdir(parents=True, exist_ok=True)
    timer.seconds.clear()
    start = time.perf_counter()
    texts.run(cfg, out)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2500, help="texts per label of the small run (the large: 4n)")
    parser.add_argument("--words", type=int, default=40, help="mean words per text of label a")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sbert-floor", action="store_true", help="also time embedding all 2 x 4n texts")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    model = load_sbert()
    load_s = time.perf_counter() - start
    vocab = vocabulary(model)
    timer = Timer()
    timer.wrap(diversity, "embed_sets", "sbert_embed")
    timer.wrap(diversity, "measure_set", "per_set")
    timer.wrap(diversity, "compare_sets", "compare")
    timer.wrap(diversity, "length_matched", "length_matched")
    rows, floor = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (args.n, 4 * args.n):
            path = Path(tmp) / f"texts_{n}.jsonl"
            sets = {label: synthetic(vocab, n, args.words, zipf, scale, args.seed * 10 + s)
                    for label, zipf, scale, s in (("a", 1.0, 1.0, 0), ("b", 1.2, 1.3, 1))}
            with open(path, "w") as fh:
                for label, texts_of_label in sets.items():
                    for text in texts_of_label:
                        fh.write(json.dumps({"model": label, "text": text}) + "\n")
            seconds = run_once(path, Path(tmp) / f"run_{n}", timer)
            parts = {k: round(v, 2) for k, v in timer.seconds.items()}
            parts["other"] = round(seconds - sum(timer.seconds.values()), 2)
            rows[n] = {"seconds": seconds, "parts": parts}
            print(f"n={n:>6} texts per label: {seconds:7.1f} s  {parts}", flush=True)
        if args.sbert_floor:
            start = time.perf_counter()
            diversity.embed_sets(sets)
            floor = {"sbert_all_4n_s": round(time.perf_counter() - start, 2), "sbert_all_4n_texts": 8 * args.n}
            print(f"embedding all {8 * args.n} texts: {floor['sbert_all_4n_s']:.1f} s", flush=True)
    small, large = rows[args.n], rows[4 * args.n]
    embedded_4n = 2 * min(4 * args.n, ExperimentConfig().sbert_max_texts)
    sbert_4n_s = max(large["parts"].get("sbert_embed", 0), 1e-9)
    import torch

    print(json.dumps({"benchmark": "texts", "n": args.n, "seconds_n": round(small["seconds"], 2),
                      "seconds_4n": round(large["seconds"], 2),
                      "scaling_4x": round(large["seconds"] / small["seconds"], 3), "texts_per_label_4n": 4 * args.n,
                      "words_per_text": args.words, "parts_n": small["parts"], "parts_4n": large["parts"],
                      "sbert_texts_embedded_4n": embedded_4n, "sbert_texts_per_s_4n": round(embedded_4n / sbert_4n_s, 1),
                      **floor, "sbert_load_s": round(load_s, 2), "torch_threads": torch.get_num_threads(),
                      "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()

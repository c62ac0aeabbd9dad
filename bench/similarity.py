"""Benchmark: mean and std of pairwise cosine similarity in O(n d) memory (measure.metrics.similarity) against
the n x n matrix, on random unit vectors of SBERT's size (384-d), at growing n. Prints one line per n and,
last, one JSON object. The n x n route is skipped where its matrix would exceed NXN_MAX_GB.

    python bench/similarity.py [--sizes 1000 5000 20000 100000] [--dim 384]
"""
from __future__ import annotations

import argparse
import json
import time
import tracemalloc

import numpy as np

from measure.metrics.similarity import pairwise_cosine_stats

NXN_MAX_GB = 2.0


def _timed(fn):
    tracemalloc.start()
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak / 2**20


def _nxn(X: np.ndarray) -> dict:
    K = X @ X.T
    pairs = K[np.triu_indices(len(X), k=1)]
    return {"mean": float(pairs.mean()), "std": float(pairs.std())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000, 100000])
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for n in args.sizes:
        X = rng.normal(size=(n, args.dim)).astype(np.float32) + 0.3  # shifted: cosines near 0.08, not 0
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        fast, t_fast, mb_fast = _timed(lambda: pairwise_cosine_stats(X))
        row = {"n": n, "dim": args.dim, "fast_s": t_fast, "fast_peak_mb": mb_fast, "mean": fast["mean"],
               "std": fast["std"]}
        if n * n * 8 * 1.5 / 2**30 <= NXN_MAX_GB:
            slow, t_slow, mb_slow = _timed(lambda: _nxn(X.astype(np.float64)))
            row.update(nxn_s=t_slow, nxn_peak_mb=mb_slow, abs_diff_mean=abs(slow["mean"] - fast["mean"]),
                       abs_diff_std=abs(slow["std"] - fast["std"]))
        else:
            row.update(nxn_s=None, nxn_peak_mb=None, nxn_skipped=f"n x n matrix over {NXN_MAX_GB} GB")
        rows.append(row)
        print(f"n={n:>7}: O(nd) {t_fast:7.3f} s, peak {mb_fast:8.1f} MB | n x n "
              + (f"{row['nxn_s']:7.3f} s, peak {row['nxn_peak_mb']:8.1f} MB, |diff| mean {row['abs_diff_mean']:.1e} "
                 f"std {row['abs_diff_std']:.1e}" if row["nxn_s"] is not None else "skipped"), flush=True)
    print(json.dumps({"benchmark": "pairwise_cosine_stats", "rows": rows}))


if __name__ == "__main__":
    main()

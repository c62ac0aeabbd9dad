"""Pooling and comparisons across completions: mean, std, bootstrap CI, tests, effect sizes; and for statistics
of whole sets (distinct-n, Vendi, ...) the comparison at equal n and the permutation test.

Per-item scores come from ``measure.metrics``; this module only aggregates them.

Identical inputs: values that agree to IDENTICAL_RTOL (relative) are one value, so two groups of identical
values (up to float noise: float32 embeddings of one text in two batches differ by ~1e-7) give "no
difference" (p = 1, effect 0), never the p = 0 that Welch's t computes from noise.
"""
from __future__ import annotations

import os
import warnings
from typing import Callable, Dict, List, Sequence

import numpy as np
from scipy import stats as sps

IDENTICAL_RTOL = 1e-6  # relative spread below which a group of values is one value (see the module docstring)


def _clean(values) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    return x[~np.isnan(x)]


def bootstrap_ci(values, n_boot: int = 2000, level: float = 0.95, seed: int = 0, statistic=np.mean) -> list:
    """Percentile bootstrap interval of ``statistic`` over ``values`` ([lo, hi]); NaNs are dropped."""
    x = _clean(values)
    if x.size == 0:
        raise ValueError("bootstrap_ci needs at least one non-NaN value")
    if not 0 < level < 1:
        raise ValueError(f"level: {level} is out of range; accepted 0 < level < 1")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    stats_ = statistic(x[idx], axis=1)
    alpha = (1 - level) / 2
    return [float(np.quantile(stats_, alpha)), float(np.quantile(stats_, 1 - alpha))]


def summarize(values, n_boot: int = 2000, seed: int = 0) -> Dict[str, object]:
    """{mean, std (sample std, ddof=1, across items), ci95 (bootstrap of the mean), n}."""
    x = _clean(values)
    return {
        "mean": float(x.mean()) if x.size else float("nan"),
        "std": float(x.std(ddof=1)) if x.size > 1 else 0.0,
        "ci95": bootstrap_ci(x, n_boot=n_boot, seed=seed) if x.size else [float("nan")] * 2,
        "n": int(x.size),
    }


def cohens_d(a, b) -> float:
    """Standardised mean difference (a - b) / pooled sd."""
    a, b = _clean(a), _clean(b)
    pooled = np.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2))
    diff = a.mean() - b.mean()
    if pooled > 0:
        return float(diff / pooled)
    return 0.0 if diff == 0 else float(np.copysign(np.inf, diff))  # two constant groups


def cliffs_delta(a, b) -> float:
    """P(a > b) - P(a < b) over all pairs: a rank effect size in [-1, 1]."""
    a, b = _clean(a), _clean(b)
    diff = np.sign(a[:, None] - b[None, :])
    return float(diff.mean())


def identical(a, b) -> bool:
    """All values of ``a`` and ``b`` (NaNs dropped) are one value, to IDENTICAL_RTOL."""
    pooled = np.concatenate([_clean(a), _clean(b)])
    if pooled.size == 0:
        return False
    return float(np.ptp(pooled)) <= IDENTICAL_RTOL * max(float(np.max(np.abs(pooled))), np.finfo(float).tiny)


def compare(a, b, n_boot: int = 2000, seed: int = 0) -> Dict[str, object]:
    """Base (a) vs aligned (b): Welch's t, Mann-Whitney U, Cohen's d, Cliff's delta, CI of mean difference.
    Identical values on both sides give no difference (p = 1, effects 0; see ``identical``)."""
    a, b = _clean(a), _clean(b)
    if a.size < 2 or b.size < 2:
        raise ValueError(f"compare needs >= 2 values per group; got {a.size} and {b.size}")
    if identical(a, b):
        return {"mean_diff": 0.0, "mean_diff_ci95": [0.0, 0.0], "welch_t": 0.0, "welch_p": 1.0, "mannwhitney_p": 1.0,
                "effect_size": 0.0, "effect_size_name": "cohens_d", "cliffs_delta": 0.0,
                "n": [int(a.size), int(b.size)], "no_difference": "identical values in both groups"}
    rng = np.random.default_rng(seed)
    diffs = (a[rng.integers(0, a.size, (n_boot, a.size))].mean(1) - b[rng.integers(0, b.size, (n_boot, b.size))].mean(1))
    with warnings.catch_warnings():  # "precision loss ... nearly identical": identical groups are handled above
        warnings.simplefilter("ignore", RuntimeWarning)
        return _tests(a, b, diffs)


def _tests(a: np.ndarray, b: np.ndarray, diffs: np.ndarray) -> Dict[str, object]:
    return {
        "mean_diff": float(a.mean() - b.mean()),
        "mean_diff_ci95": [float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))],
        "welch_t": float(sps.ttest_ind(a, b, equal_var=False).statistic),
        "welch_p": float(sps.ttest_ind(a, b, equal_var=False).pvalue),
        "mannwhitney_p": float(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue),
        "effect_size": cohens_d(a, b),
        "effect_size_name": "cohens_d",
        "cliffs_delta": cliffs_delta(a, b),
        "n": [int(a.size), int(b.size)],
    }


def parallel_map(fn: Callable, items: Sequence) -> List:
    """``[fn(x) for x in items]`` on the available cores, in threads: the set statistics spend their time in
    numpy, zlib and LAPACK, which release the GIL. BLAS is held to one thread per worker meanwhile, so workers do
    not oversubscribe the cores (on a busy 2-core machine two BLAS threads per worker made a 384 x 384 eigvalsh
    40x slower, and two OpenMP threads made k-means 60x slower)."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    items = list(items)
    workers = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
                  len(items))
    with threadpool_limits(limits=1, user_api="blas"):
        if workers <= 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(fn, items))


def equal_n_values(evaluate: Callable[[np.ndarray], Dict[str, float]], idx_a, idx_b, n_draws: int = 10,
                   seed: int = 0) -> dict:
    """Set statistics of two sets at equal n: ``evaluate(indices) -> {metric: value}`` on the smaller set whole
    and on ``n_draws`` seeded subsamples (without replacement) of the larger one to the smaller n, averaged
    over the draws (NaN draws skipped). Equal sizes: both sets whole, no draws.

    Returns ``{"n": [n_a, n_b], "n_matched", "n_draws", "a": {metric: value}, "b": ..., "draws_sd": ...}``
    (``draws_sd``: std over the draws of the subsampled side, ddof = 1).
    """
    idx_a, idx_b = np.asarray(idx_a), np.asarray(idx_b)
    if n_draws < 1:
        raise ValueError(f"n_draws: {n_draws} is out of range; accepted n_draws >= 1")
    m = min(idx_a.size, idx_b.size)
    rng = np.random.default_rng(seed)
    out: dict = {"n": [int(idx_a.size), int(idx_b.size)], "n_matched": int(m), "n_draws": 0, "draws_sd": {}}
    for side, idx in (("a", idx_a), ("b", idx_b)):
        if idx.size == m:
            out[side] = dict(evaluate(idx))
            continue
        draws = parallel_map(evaluate, [np.sort(rng.choice(idx, m, replace=False)) for _ in range(n_draws)])
        out["n_draws"] = n_draws
        out[side] = {k: _nanmean([d[k] for d in draws]) for k in draws[0]}
        out["draws_sd"] = {k: float(np.nanstd([d[k] for d in draws], ddof=1)) if n_draws > 1 else 0.0
                           for k in draws[0] if np.isfinite([d[k] for d in draws]).sum() > 1}
    return out


def _nanmean(values) -> float:
    x = _clean(values)
    return float(x.mean()) if x.size else float("nan")


def permutation_test_sets(evaluate: Callable[[np.ndarray], Dict[str, float]], idx_a, idx_b,
                          metrics: Sequence[str], n_resamples: int = 200, seed: int = 0) -> Dict[str, dict]:
    """Two-sided permutation test of ``value(a) - value(b)`` for each metric of a whole set:
    ``scipy.stats.permutation_test`` ('independent': the items of both sets pooled and re-split with the
    group sizes kept), where ``evaluate(indices) -> {metric: value}`` computes the set metrics of the items
    at those indices. Keeping the sizes keeps whatever the statistic owes to n in the null distribution too,
    so the test is exact under exchangeability even for a statistic that depends on n. p-values follow scipy:
    (count as extreme + 1) / (n_resamples + 1) for random permutations, exact enumeration when the
    partitions are fewer than ``n_resamples``. NaN (with a reason) where the metric is undefined on the
    observed or on a permuted split.
    """
    idx_a, idx_b = np.asarray(idx_a), np.asarray(idx_b)
    metrics = list(metrics)

    def statistic(x, y, axis=-1):
        xs, ys = np.atleast_2d(x), np.atleast_2d(y)
        values = parallel_map(evaluate, [*xs, *ys])
        out = np.array([[va[m] - vb[m] for m in metrics] for va, vb in zip(values[:len(xs)], values[len(xs):])])
        return out[0] if np.ndim(x) == 1 else out

    res = sps.permutation_test((idx_a, idx_b), statistic, vectorized=True, n_resamples=n_resamples,
                               permutation_type="independent", random_state=seed)
    null = np.asarray(res.null_distribution).reshape(-1, len(metrics))
    exact = null.shape[0] < n_resamples
    out = {}
    for j, metric in enumerate(metrics):
        block = {"permutation_p": float(np.atleast_1d(res.pvalue)[j]), "n_permutations": int(null.shape[0]),
                 "permutation_exact": bool(exact), "permutation_n": [int(idx_a.size), int(idx_b.size)]}
        if not np.isfinite(np.atleast_1d(res.statistic)[j]) or not np.isfinite(null[:, j]).all():
            block.update(permutation_p=float("nan"), permutation_undefined="the metric is undefined (NaN) on the "
                         "observed sets or on some permuted split")
        out[metric] = block
    return out

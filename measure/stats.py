"""Pooling and comparisons across completions: mean, std, bootstrap CI, tests, effect sizes.

Per-item scores come from ``measure.metrics``; this module only aggregates them.
"""
from __future__ import annotations

from typing import Dict

import numpy as np
from scipy import stats as sps


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


def compare(a, b, n_boot: int = 2000, seed: int = 0) -> Dict[str, object]:
    """Base (a) vs aligned (b): Welch's t, Mann-Whitney U, Cohen's d, Cliff's delta, CI of mean difference."""
    a, b = _clean(a), _clean(b)
    if a.size < 2 or b.size < 2:
        raise ValueError(f"compare needs >= 2 values per group; got {a.size} and {b.size}")
    rng = np.random.default_rng(seed)
    diffs = (a[rng.integers(0, a.size, (n_boot, a.size))].mean(1) - b[rng.integers(0, b.size, (n_boot, b.size))].mean(1))
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

"""Comparisons with known answers: identical inputs give no difference, the permutation test equals scipy's on a
plain statistic and keeps the group sizes, equal-n values subsample the larger side only."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from measure.stats import compare, equal_n_values, identical, permutation_test_sets


def test_identical_groups_give_no_difference_not_p_zero():
    base = 0.123456789
    a = base + np.array([0.0, 1e-17, -1e-17, 0.0, 2e-17])  # float noise, as two summation orders give
    b = np.full(5, base) + 1e-9  # float32 embeddings of one text in two batches differ by ~1e-7 relative
    assert identical(a, b)
    result = compare(a, b, n_boot=200)
    assert result["welch_p"] == 1.0 and result["mannwhitney_p"] == 1.0
    assert result["mean_diff"] == 0.0 and result["effect_size"] == 0.0 and "no_difference" in result
    assert not identical([0.1, 0.1], [0.1, 0.1001])
    assert compare([0.1, 0.2, 0.3], [0.5, 0.6, 0.7], n_boot=200)["welch_p"] < 0.05


def test_permutation_test_equals_scipy_and_keeps_sizes():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0, 1, 30), rng.normal(0.8, 1, 12)])
    seen_sizes = set()

    def evaluate(idx):
        seen_sizes.add(len(idx))
        return {"mean": float(values[idx].mean()), "max": float(values[idx].max())}

    ours = permutation_test_sets(evaluate, np.arange(30), np.arange(30, 42), ["mean", "max"], n_resamples=299, seed=3)
    direct = sps.permutation_test((values[:30], values[30:]), lambda x, y, axis=-1: x.mean(axis) - y.mean(axis),
                                  vectorized=True, n_resamples=299, random_state=3)
    assert ours["mean"]["permutation_p"] == pytest.approx(direct.pvalue)
    assert seen_sizes == {30, 12}  # every permuted split keeps the group sizes
    assert ours["mean"]["n_permutations"] == 299 and ours["mean"]["permutation_n"] == [30, 12]
    assert ours["mean"]["permutation_p"] >= 1 / 300  # never 0


def test_permutation_test_is_exact_on_tiny_sets_and_reports_undefined():
    def evaluate(idx):
        return {"size_sum": float(np.sum(idx)), "nan": float("nan")}

    out = permutation_test_sets(evaluate, np.arange(3), np.arange(3, 6), ["size_sum", "nan"], n_resamples=200)
    assert out["size_sum"]["permutation_exact"] and out["size_sum"]["n_permutations"] == 20  # C(6, 3) splits
    assert np.isnan(out["nan"]["permutation_p"]) and out["nan"]["permutation_undefined"]


def test_equal_n_values_subsample_the_larger_side():
    def evaluate(idx):
        return {"n": float(len(idx)), "mean_index": float(np.mean(idx))}

    out = equal_n_values(evaluate, np.arange(100), np.arange(100, 400), n_draws=5, seed=0)
    assert out["n"] == [100, 300] and out["n_matched"] == 100 and out["n_draws"] == 5
    assert out["a"] == {"n": 100.0, "mean_index": 49.5} and out["b"]["n"] == 100.0
    assert 200 < out["b"]["mean_index"] < 300 and out["draws_sd"]["mean_index"] > 0
    same = equal_n_values(evaluate, np.arange(50), np.arange(50, 100))
    assert same["n_draws"] == 0 and same["b"]["mean_index"] == 74.5

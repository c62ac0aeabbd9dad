import numpy as np
import pytest

from measure.metrics.entropy import entropy_bits, mean_per_completion, top_k_entropy_bits
from measure.stats import bootstrap_ci, compare, summarize


def test_uniform_over_five_gives_log2_5():
    assert top_k_entropy_bits(np.full((3, 5), 0.2)) == pytest.approx([np.log2(5)] * 3)


def test_one_hot_gives_zero():
    assert top_k_entropy_bits(np.array([[1.0, 0, 0, 0, 0]]))[0] == 0.0


def test_top_k_is_renormalised_over_the_top_k():
    # top-5 slice of a larger distribution: 5 equal probabilities of 0.1 still give log2 5
    assert top_k_entropy_bits(np.full(5, 0.1)) == pytest.approx(np.log2(5))


def test_two_outcomes_half_half_is_one_bit():
    assert entropy_bits([0.5, 0.5]) == pytest.approx(1.0)


def test_bad_probabilities_raise():
    with pytest.raises(ValueError, match=">= 0"):
        entropy_bits([-0.1, 1.1])
    with pytest.raises(ValueError, match="positive sum"):
        entropy_bits([0.0, 0.0])


def test_mean_per_completion_and_empty():
    out = mean_per_completion([[1.0, 3.0], []])
    assert out[0] == 2.0 and np.isnan(out[1])


def test_summarize_and_bootstrap():
    rng = np.random.default_rng(0)
    x = rng.normal(1.5, 0.2, 200)
    s = summarize(x)
    assert s["n"] == 200 and s["ci95"][0] < s["mean"] < s["ci95"][1]
    assert s["std"] == pytest.approx(np.std(x, ddof=1))
    assert bootstrap_ci(x, seed=1) == bootstrap_ci(x, seed=1)


def test_compare_detects_a_shift_and_not_a_null():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.48, 0.17, 100), rng.normal(0.96, 0.12, 100)  # the paper's Llama-2 numbers
    shifted = compare(a, b)
    assert shifted["welch_p"] < 1e-10 and shifted["mannwhitney_p"] < 1e-10 and shifted["effect_size"] > 2
    assert shifted["mean_diff_ci95"][0] > 0.4
    null = compare(a, rng.normal(1.48, 0.17, 100))
    assert null["welch_p"] > 0.01


def test_cohens_d_of_constant_groups():
    from measure.stats import cohens_d

    assert cohens_d([1.0, 1.0], [1.0, 1.0]) == 0.0
    assert cohens_d([2.0, 2.0], [1.0, 1.0]) == float("inf")

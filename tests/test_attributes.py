"""Attribute diversity metrics: known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest

from measure.metrics.attributes import (attribute_entropy_bits, distinct_count, missing_share, tv_distance,
                                        value_distribution)
from measure.persona_parse import parse_persona


def test_entropy_known_answers():
    assert attribute_entropy_bits(["a", "a", "a"]) == 0.0
    assert attribute_entropy_bits(["a", "b", "c", "d"]) == pytest.approx(2.0)
    assert attribute_entropy_bits(["a", "b", None, None]) == pytest.approx(1.0)  # None left out
    p = 0.25  # 1 of 4 is "b": H = -(0.75 log2 0.75 + 0.25 log2 0.25)
    assert attribute_entropy_bits(["a", "a", "a", "b"]) == pytest.approx(-(1 - p) * math.log2(1 - p) - p * math.log2(p))
    with pytest.raises(ValueError):
        attribute_entropy_bits([None, None])


def test_distinct_count_and_distribution():
    assert distinct_count(["x", "y", "x", None]) == 2
    assert distinct_count([]) == 0
    assert value_distribution([1, 1, 2, None]) == {"1": pytest.approx(2 / 3), "2": pytest.approx(1 / 3)}


def test_tv_distance_known_answers():
    assert tv_distance(["a", "b"], {"a": 0.5, "b": 0.5}) == pytest.approx(0.0)
    assert tv_distance(["c", "c"], {"a": 0.5, "b": 0.5}) == pytest.approx(1.0)
    assert tv_distance(["a", "a", "b", "b"], {"a": 0.75, "b": 0.25}) == pytest.approx(0.25)
    assert tv_distance([32, 32, None], {"32": 1.0}) == pytest.approx(0.0)  # ints match string keys
    with pytest.raises(ValueError):
        tv_distance(["a"], {"a": 0.5})  # truth does not sum to 1
    with pytest.raises(ValueError):
        tv_distance([None], {"a": 1.0})  # nothing to compare


def test_missing_share():
    parsed = [parse_persona("Gender: Male\nAge: 30"), parse_persona("Gender: ???"), parse_persona("")]
    assert missing_share(parsed, "gender") == pytest.approx(2 / 3)
    assert missing_share(parsed, "age") == pytest.approx(2 / 3)
    assert missing_share(parsed, "mbti") == 1.0
    with pytest.raises(ValueError):
        missing_share(parsed, "shoe_size")
    with pytest.raises(ValueError):
        missing_share([], "age")


# ---------------------------------------------------------------- counted statistics at equal n, Chao-Shen

def test_chao_shen_known_answers():
    from measure.metrics.attributes import chao_shen_entropy_bits

    # a, a, b, c: n = 4, f1 = 2, coverage 1/2, p_a = 0.25, 0.125, 0.125; each term over 1 - (1 - p_a)^4
    expected = -(0.25 * math.log(0.25) / (1 - 0.75 ** 4) + 2 * 0.125 * math.log(0.125) / (1 - 0.875 ** 4)) / math.log(2)
    assert chao_shen_entropy_bits(["a", "a", "b", "c"]) == pytest.approx(expected)
    assert chao_shen_entropy_bits(["a"] * 5) == pytest.approx(0.0)
    many = ["a", "b"] * 200  # no singletons, large n: the plug-in entropy, 1 bit
    assert chao_shen_entropy_bits(many) == pytest.approx(attribute_entropy_bits(many), abs=1e-6)
    rng = np.random.default_rng(0)
    draws = [str(v) for v in rng.integers(0, 300, 60)]  # many unseen values: above the plug-in, which is <= log2 60
    assert chao_shen_entropy_bits(draws) > attribute_entropy_bits(draws)
    with pytest.raises(ValueError):
        chao_shen_entropy_bits([None])


def test_equal_n_makes_a_set_and_its_subsample_agree():
    """Base (n = 400) vs a random subsample of itself (n = 100): at full n the plug-in entropy and the distinct count
    differ a lot (n-dependence, not a difference); at equal n they do not."""
    from measure.metrics.attributes import compare_at_equal_n

    rng = np.random.default_rng(3)
    base = [str(v) for v in rng.zipf(1.3, 400) % 500]
    sub = [base[i] for i in rng.choice(400, 100, replace=False)]
    out = compare_at_equal_n(base, sub, ("entropy_bits", "entropy_chao_shen_bits", "distinct"), draws=20,
                             n_perm=300, seed=0)
    for stat in ("entropy_bits", "entropy_chao_shen_bits", "distinct"):
        block = out[stat]
        assert block["n"] == [400, 100] and block["n_matched"] == 100
        assert block["permutation_p"] > 0.05, (stat, block)
        assert block["null_diff_95"][0] <= block["diff"] <= block["null_diff_95"][1], (stat, block)
    for stat in ("entropy_bits", "distinct"):
        assert abs(out[stat]["diff"]) < abs(out[stat]["diff_unmatched"]) / 3, (stat, out[stat])
    assert out["distinct"]["diff_unmatched"] > 30  # the raw count cannot be compared
    same = compare_at_equal_n(base, base, ("entropy_bits",), n_perm=100)["entropy_bits"]
    assert same["diff"] == 0.0 and same["draws"] == 0 and same["permutation_p"] == 1.0


def test_equal_n_sees_a_real_cut_in_diversity():
    from measure.metrics.attributes import at_equal_n, compare_at_equal_n

    rng = np.random.default_rng(4)
    wide = [str(v) for v in rng.integers(0, 64, 300)]
    narrow = [str(v) for v in rng.integers(0, 8, 60)]
    block = compare_at_equal_n(wide, narrow, ("entropy_bits",), n_perm=200)["entropy_bits"]
    assert block["diff"] > 2 and block["permutation_p"] < 0.01 and block["diff"] > block["null_diff_95"][1]
    (va, vb, m), = at_equal_n(wide, narrow + [None], ("entropy_bits",)).values()
    assert m == 60 and va > vb and vb == pytest.approx(attribute_entropy_bits(narrow))
    assert "skipped" in compare_at_equal_n(["a"], ["b", "c"])["entropy_bits"]
    with pytest.raises(ValueError):
        compare_at_equal_n(["a", "b"], ["a", "b"], ("vendi",))


def test_truth_distribution_marginalises_names_over_nationality():
    from measure.metrics.attributes import truth_distribution

    truth = {"nationality": {"A": 0.75, "B": 0.25}, "gender": {"Male": 1.0},
             "first_names_given_nationality": {"A": {"x": 0.5, "y": 0.5}, "B": {"y": 1.0}}}
    assert truth_distribution(truth, "first_name") == {"x": pytest.approx(0.375), "y": pytest.approx(0.625)}
    assert truth_distribution(truth, "gender") == {"Male": 1.0}
    assert truth_distribution(truth, "last_name") is None and truth_distribution(None, "age") is None


def test_sum_by_field_adds_up_and_assigns_each_token_to_its_field():
    from measure.metrics.attributes import fields_in_order, sum_by_field
    from measure.persona_parse import field_spans

    text = "Sure.\nGender: Male\nAge: 30"
    # tokens: "Sure." "\n" "Gender" ":" " Male" "\n" "Age" ":" " 30" and EOS (no text)
    pieces = ["Sure.", "\n", "Gender", ":", " Male", "\n", "Age", ":", " 30", ""]
    ends = list(np.cumsum([len(p) for p in pieces]))
    values = [1.0, 2.0, 0.5, 0.5, 3.0, 0.25, 1.0, 1.0, 4.0, 7.0]
    out = sum_by_field(values, ends, field_spans(text), len(text))
    assert out == {"preamble": 3.0, "gender": 4.25, "age": 6.0, "end_of_text": 7.0}
    assert sum(out.values()) == pytest.approx(sum(values))
    assert fields_in_order(["end_of_text", "age", "preamble", "gender"]) == ["gender", "age", "end_of_text", "preamble"]
    with pytest.raises(ValueError):
        sum_by_field([1.0], [1, 2], [], 2)

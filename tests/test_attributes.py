"""Attribute diversity metrics: known answers."""
from __future__ import annotations

import math

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

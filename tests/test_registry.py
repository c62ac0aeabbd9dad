"""The metric registry: one declaration per metric, parameters filled from config, and the consumers derive their
keys from it (no top-k key written out by hand)."""
from __future__ import annotations

import re

import pytest
from conftest import REPO

from measure.metrics.registry import METRICS, REGISTRY, Metric, key, metric, topk_key


def test_rows_are_declared_once_with_a_unit_level_and_direction():
    assert len(REGISTRY) == len(METRICS)  # no key declared twice
    for m in METRICS:
        assert m.unit and m.aggregation and m.label
        assert m.level in ("token", "text", "set") and m.direction in ("higher", "lower", "neither")
    with pytest.raises(ValueError):
        Metric("x", "x", "bits", "token", "sideways", "mean")


def test_parameters_fill_keys_and_filled_keys_find_their_row():
    assert topk_key(5) == "top5_entropy_bits" and topk_key(3) == "top3_entropy_bits"
    assert metric("top7_entropy_bits") is REGISTRY["top{k}_entropy_bits"]
    assert metric("top{k}_entropy_bits").title(k=7) == "top-7 entropy (bits)"
    assert key("attribute_entropy_bits") == "attribute_entropy_bits"
    assert metric("marginal_entropy_bits").title(attr="age") == "age exact marginal entropy (bits)"
    with pytest.raises(KeyError):
        metric("no_such_metric")


def test_direction_says_which_way_is_more_diverse():
    assert metric("sbert_cosine").more_diverse(0.2, 0.4) is True  # less similar = more diverse
    assert metric("top5_entropy_bits").more_diverse(0.9, 1.4) is False
    assert metric("conditional_kl_nats").more_diverse(1.0, 0.0) is None  # a distance, not diversity
    assert metric("distinct_2").more_diverse(0.5, 0.5) is None


@pytest.mark.parametrize("path", ["rlhf/stages/callbacks.py", "rlhf/stages/ppo_stage.py", "rlhf/stages/summary.py",
                                  "rlhf/study/report.py", "measure/experiments/personas.py"])
def test_consumers_derive_top_k_keys_from_k(path):
    source = (REPO / path).read_text()
    assert not re.search(r"top5|top-5", source), f"{path} writes a top-k key by hand; use registry.topk_key(k)"

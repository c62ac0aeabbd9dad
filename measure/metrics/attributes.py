"""Diversity of categorical attributes (Experiment 1: names, genders, ages, nationalities, ethnicities, types).

Pure functions over lists of attribute values. ``None`` marks a value that could not be read and is left
out of every distribution (its share is what ``missing_share`` reports). Values are compared as strings, so
ages given as ints match a ground-truth JSON whose keys are "32".
"""
from __future__ import annotations

from collections import Counter
from typing import Dict, Hashable, Iterable, Optional, Sequence

import numpy as np

from measure.metrics.entropy import entropy_bits
from measure.persona_parse import FIELDS


def _present(values: Iterable[Optional[Hashable]]) -> list:
    return [str(v) for v in values if v is not None]


def value_distribution(values: Iterable[Optional[Hashable]]) -> Dict[str, float]:
    """Empirical shares of each value (as a string), most common first; ``None`` left out."""
    present = _present(values)
    if not present:
        raise ValueError("value_distribution needs at least one value that is not None")
    return {v: c / len(present) for v, c in Counter(present).most_common()}


def attribute_entropy_bits(values: Iterable[Optional[Hashable]]) -> float:
    """Shannon entropy (bits) of the empirical distribution of ``values``: 0 for one value, log2(k) for k equal."""
    counts = np.array(list(Counter(_present(values)).values()), dtype=np.float64)
    if counts.size == 0:
        raise ValueError("attribute_entropy_bits needs at least one value that is not None")
    return float(entropy_bits(counts))


def distinct_count(values: Iterable[Optional[Hashable]]) -> int:
    """Number of different values (``None`` left out)."""
    return len(set(_present(values)))


def tv_distance(values: Iterable[Optional[Hashable]], truth_probs: Dict[Hashable, float]) -> float:
    """Total variation distance, 0.5 * sum |p_hat - p|, between the values' shares and ``truth_probs``.

    A value the truth does not have counts with truth probability 0; the result lies in [0, 1].
    """
    truth = {str(k): float(p) for k, p in truth_probs.items()}
    if not truth or any(p < 0 for p in truth.values()) or abs(sum(truth.values()) - 1.0) > 1e-6:
        raise ValueError(f"truth_probs must be non-negative and sum to 1; got sum {sum(truth.values())}")
    empirical = value_distribution(values)
    keys = sorted(set(truth) | set(empirical))  # a fixed summation order: the same digits in every process
    return 0.5 * float(sum(abs(empirical.get(k, 0.0) - truth.get(k, 0.0)) for k in keys))


def missing_share(parsed: Sequence, field: str) -> float:
    """Share of parsed personas (objects with a ``missing`` list) whose ``field`` is absent or invalid."""
    if len(parsed) == 0:
        raise ValueError("missing_share needs at least one parsed persona")
    if field not in FIELDS:
        raise ValueError(f"field: {field!r} is not a persona field; accepted {list(FIELDS)}")
    return sum(field in p.missing for p in parsed) / len(parsed)

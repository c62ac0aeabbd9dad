"""Per-input vs cross-input diversity of persona attributes (Kirk et al., ICLR 2024, Section 5).

Kirk et al. find that RLHF lowers *per-input* diversity (the variety among a model's samples for one prompt) much
more than *cross-input* diversity (the variety of its outputs across different prompts). Here the inputs are the
tiny world's products, each asked for a customer persona with the same instruction, and the output is one parsed
card attribute:

    per-input    the values of one product's samples, then averaged over products
                 (``per_input_entropy_bits``, ``within_input_match``)
    cross-input  the values of all products' samples together, or of pairs of samples from different products
                 (``pooled_entropy_bits``, ``cross_input_match``, ``identical_persona_share``)

In the world a customer's attributes are drawn independently of the product, so the true mutual information
between product and attribute is 0: a model that learned the world keeps ``mutual_information_excess_bits`` near
0 and ``cross_input_match`` equal to ``within_input_match``. A model that writes one name whatever the product has
per-input entropy 0 and ``cross_input_match`` 1 (collapse across inputs, not only within); one that writes a
different name per product has a positive mutual information and ``cross_input_match`` below the within-input one.

Pure functions of parsed values (``None`` = missing, left out); values compare as strings.
"""
from __future__ import annotations

from itertools import combinations
from typing import Dict, List, Optional, Sequence

import numpy as np

from measure.metrics.attributes import _row_counts
from measure.metrics.entropy import entropy_bits
from measure.persona_parse import ATTRIBUTES, parse_persona

# the per-attribute statistics of ``per_input_cross_input`` that ``cross_input_metrics`` flattens
STATISTICS = ("per_input_entropy_bits", "pooled_entropy_bits", "mutual_information_bits",
              "mutual_information_null_bits", "mutual_information_excess_bits", "within_input_match",
              "cross_input_match", "n_per_input")
PREFIX = "cross_input"


def _entropy_rows_bits(codes: np.ndarray, n_values: int) -> np.ndarray:
    """Plug-in entropy (bits) of each row of integer ``codes`` (rows, n)."""
    return entropy_bits(_row_counts(codes, n_values), axis=1)


def _subsample(codes: Sequence[np.ndarray], m: int, rows: int, rng) -> np.ndarray:
    """(rows, K, m): ``rows`` draws of m values of each input without replacement (an input with m values as is)."""
    out = np.empty((rows, len(codes), m), dtype=np.int64)
    for k, c in enumerate(codes):
        if c.size == m:
            out[:, k, :] = c
        else:
            out[:, k, :] = c[np.argsort(rng.random((rows, c.size)), axis=1)[:, :m]]
    return out


def _mutual_information_parts(sub: np.ndarray, n_values: int) -> tuple:
    """(mean per-input entropy, pooled entropy) of each row of ``sub`` (rows, K, m), in bits."""
    rows, k, m = sub.shape
    per_input = _entropy_rows_bits(sub.reshape(rows * k, m), n_values).reshape(rows, k).mean(axis=1)
    pooled = _entropy_rows_bits(sub.reshape(rows, k * m), n_values)
    return per_input, pooled


def _match_rates(codes: Sequence[np.ndarray], n_values: int) -> tuple:
    """(within, cross): the chance that two different samples of one input share a value (mean over inputs), and
    that a sample of one input and a sample of another do (mean over pairs of inputs). Both are unbiased
    estimators of sum_v p_v q_v (U-statistics), so they need no matching of n."""
    counts = np.stack([np.bincount(c, minlength=n_values) for c in codes]).astype(np.float64)
    n = counts.sum(axis=1)
    within = float(np.mean((counts * (counts - 1)).sum(axis=1) / (n * (n - 1))))
    shares = counts / n[:, None]
    cross = float(np.mean([shares[i] @ shares[j] for i, j in combinations(range(len(codes)), 2)]))
    return within, cross


def per_input_cross_input(values_by_input: Dict[str, List[Optional[str]]], n_permutations: int = 200,
                          draws: int = 20, seed: int = 0) -> dict:
    """Per-input vs cross-input diversity of ONE attribute, from the values of each input's samples.

    Per-input diversity is that of one prompt's samples; cross-input diversity is that of samples across prompts.
    Every input is compared at the same n, ``n_per_input`` = the smallest count of non-missing values: an input
    with more is subsampled to it without replacement, ``draws`` times, and its statistics averaged (the plug-in
    entropy falls with n, so unequal counts would read as unequal diversity).

    per_input_entropy_bits         mean over inputs of the plug-in entropy of the input's values, H(V | I), bits
    pooled_entropy_bits            plug-in entropy of all inputs' values pooled (K * n_per_input of them), H(V)
    mutual_information_bits        pooled - per_input: the plug-in I(I; V) with equal weight per input, bits
                                   (0 when every input has the same empirical shares; log2 K when the inputs'
                                   values are disjoint and equally spread)
    mutual_information_null_bits   mean I(I; V) with the input labels permuted ``n_permutations`` times (seeded):
                                   what the plug-in estimate gives at these n when V does not depend on I, since it
                                   is biased upwards at small n
    mutual_information_excess_bits mutual_information - null: ~0 when the values do not depend on the input
    within_input_match             probability that two different samples of the same input share the value
                                   (mean over inputs); the per-input repetition rate
    cross_input_match              probability that samples of two different inputs share the value (mean over
                                   pairs of inputs); a model writing the same name for every product has 1. Equal
                                   to within_input_match in expectation when the value does not depend on the input
    n_per_input                    the matched count per input (the match rates use all values: they are unbiased)
    n_inputs                       K

    Raises ValueError for fewer than 2 inputs or an input with fewer than 2 non-missing values.
    """
    if len(values_by_input) < 2:
        raise ValueError(f"values_by_input needs >= 2 inputs; got {list(values_by_input)}")
    if n_permutations < 1 or draws < 1:
        raise ValueError(f"n_permutations and draws must be >= 1; got {n_permutations} and {draws}")
    present = {key: [str(v) for v in values if v is not None] for key, values in values_by_input.items()}
    short = {key: len(v) for key, v in present.items() if len(v) < 2}
    if short:
        raise ValueError(f"every input needs >= 2 non-missing values; got {short}")
    index = {v: i for i, v in enumerate(dict.fromkeys(v for values in present.values() for v in values))}
    codes = [np.array([index[v] for v in values], dtype=np.int64) for values in present.values()]
    m, n_values, rng = min(c.size for c in codes), len(index), np.random.default_rng(seed)

    observed = _subsample(codes, m, 1 if all(c.size == m for c in codes) else draws, rng)
    per_input, pooled = (float(x.mean()) for x in _mutual_information_parts(observed, n_values))
    null_sub = _subsample(codes, m, n_permutations, rng).reshape(n_permutations, -1)
    null_sub = np.take_along_axis(null_sub, np.argsort(rng.random(null_sub.shape), axis=1), axis=1)
    null_per_input, null_pooled = _mutual_information_parts(null_sub.reshape(n_permutations, len(codes), m), n_values)
    mi, null = pooled - per_input, float(np.mean(null_pooled - null_per_input))
    within, cross = _match_rates(codes, n_values)
    return {"per_input_entropy_bits": per_input, "pooled_entropy_bits": pooled, "mutual_information_bits": mi,
            "mutual_information_null_bits": null, "mutual_information_excess_bits": mi - null,
            "within_input_match": within, "cross_input_match": cross, "n_per_input": m, "n_inputs": len(codes)}


def _identical_shares(personas_by_input: Sequence[List[tuple]]) -> tuple:
    """(within, cross) share of sample pairs with the same whole persona, among complete personas only: two
    different samples of one input (mean over inputs with >= 2), samples of two inputs (mean over pairs of inputs
    that both have one); NaN when no such pair."""
    within = [sum(a == b for a, b in combinations(p, 2)) / (len(p) * (len(p) - 1) / 2)
              for p in personas_by_input if len(p) >= 2]
    cross = [sum(a == b for a in p for b in q) / (len(p) * len(q))
             for p, q in combinations(personas_by_input, 2) if p and q]
    return (float(np.mean(within)) if within else float("nan"), float(np.mean(cross)) if cross else float("nan"))


def cross_input_metrics(cards_by_input: Dict[str, List[str]], attributes: Sequence[str] = ATTRIBUTES,
                        seed: int = 0) -> Dict[str, float]:
    """Per-input vs cross-input diversity of persona cards, ``{input: [card text, ...]}`` (e.g. one list per product).

    Keys (values are floats; an attribute that some input never gives twice is NaN, not measurable):
        cross_input/<stat>/<attr>   each statistic of ``per_input_cross_input`` (``STATISTICS``) for each attribute
        cross_input/identical_persona_share         share of pairs of samples of two different inputs whose whole
                                                    parsed persona (every field of ``ATTRIBUTES``) is the same,
                                                    among complete personas (mean over pairs of inputs)
        cross_input/within_input_identical_persona_share   the same for two samples of one input (mean over inputs)
        cross_input/n_inputs                        K
    """
    unknown = [a for a in attributes if a not in ATTRIBUTES]
    if unknown:
        raise ValueError(f"attributes: {unknown} are not persona attributes; accepted {list(ATTRIBUTES)}")
    if len(cards_by_input) < 2:
        raise ValueError(f"cards_by_input needs >= 2 inputs; got {list(cards_by_input)}")
    parsed = {key: [parse_persona(text) for text in texts] for key, texts in cards_by_input.items()}
    out: Dict[str, float] = {}
    for attr in attributes:
        values = {key: [getattr(p, attr) for p in cards] for key, cards in parsed.items()}
        readable = min(sum(v is not None for v in vals) for vals in values.values())
        stats = per_input_cross_input(values, seed=seed) if readable >= 2 else {s: float("nan") for s in STATISTICS}
        out.update({f"{PREFIX}/{s}/{attr}": float(stats[s]) for s in STATISTICS})
    complete = [[tuple(str(getattr(p, a)) for a in ATTRIBUTES) for p in cards
                 if all(getattr(p, a) is not None for a in ATTRIBUTES)] for cards in parsed.values()]
    within, cross = _identical_shares(complete)
    out[f"{PREFIX}/identical_persona_share"] = cross
    out[f"{PREFIX}/within_input_identical_persona_share"] = within
    out[f"{PREFIX}/n_inputs"] = float(len(parsed))
    return out

"""Comparisons of two sets of texts that n, length and float noise cannot fool.

For each set metric (``measure.experiments.set_metrics``), ``comparison.<metric>`` holds:
- chunk-level tests (as before): the metric on disjoint chunks of ``chunk_size`` texts per set, so the units
  are independent and of equal size; ``measure.stats.compare`` on the chunk values (bootstrap CI of the mean
  difference, Welch, Mann-Whitney, Cohen's d, Cliff's delta; ``n`` = chunks);
- ``equal_n``: both sets at the smaller n (``n``: both sizes, ``n_matched``), the larger one subsampled
  ``equal_n_draws`` times and averaged (``measure.stats.equal_n_values``): the difference to read;
- ``permutation_p``: texts shuffled between the two sets with the sizes kept (``measure.stats.
  permutation_test_sets``), on a seeded sample of at most ``permutation_max_n`` texts per set so the cost
  stays bounded at large n.
Cluster counts are compared at equal n too (``clusters_k``; no permutation test: each evaluation is a k-means
sweep). Identical inputs (the same texts on both sides) give "no difference": p = 1, differences 0.

Length (``length_matched``): every lexical metric is recomputed on texts cut to their first L tokens
(``experiment.length_control``; null = the shortest of the sets' median lengths) and compared as above (equal n
and permutation). Texts shorter than L are kept whole (``experiment.length_short_texts: keep``, the default), or
left out (``drop``: every measured text then has exactly L tokens, but which texts remain is selected by their
length: on the Phi-2 answers the long SFT answers are the repetitive ones, and dropping the short half reverses
the distinct-2 gap). ``mean_length`` flags mean lengths that differ by more than LENGTH_FLAG (20%), for whole
texts and for the cut ones (texts shorter than L keep some difference), where lexical metrics say more about
length than about diversity.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Dict, Sequence

import numpy as np

from measure.config import ExperimentConfig
from measure.experiments.set_metrics import LEXICAL_METRICS, SBERT_METRICS, SetFeatures
from measure.metrics.clusters import choose_k
from measure.metrics.lexical import truncate_to_tokens
from measure.stats import compare, equal_n_values, permutation_test_sets

log = logging.getLogger(__name__)
PER_TEXT = ("vader_compound", "length_words")
LENGTH_FLAG = 0.2  # mean lengths differing by more than this (relative to the shorter) are flagged
CLUSTER_DRAWS = 3  # equal-n draws for cluster counts (each draw is a k-means sweep over k_min..k_max)
IDENTICAL = "identical inputs: the same texts on both sides, no difference"


@dataclass
class LengthMatched:
    """The texts of every set cut to ``tokens`` tokens (shorter ones left out), pooled for comparisons."""

    tokens: int
    features: SetFeatures | None  # None when fewer than 2 texts of some set reach ``tokens``
    index: Dict[str, np.ndarray] = field(default_factory=dict)  # label -> positions in ``features``
    entries: Dict[str, dict] = field(default_factory=dict)  # label -> models.<label>.length_matched


def common_length(sets: Dict[str, object], features: SetFeatures, length_control: int | None) -> int:
    """L: ``length_control`` when set, else the smallest of the sets' median lengths in tokens (at least 1)."""
    if length_control is not None:
        return int(length_control)
    return max(1, int(min(np.median(features.lengths[ts.index]) for ts in sets.values())))


def length_matched(sets: Dict[str, object], features: SetFeatures, exp: ExperimentConfig,
                   seed: int = 0) -> LengthMatched:
    """Every set's texts cut to the common length L (``experiment.length_short_texts``: texts shorter than L
    kept whole, or left out); their lexical metrics per set (``entries``)."""
    tokens = common_length(sets, features, exp.length_control)
    source = ("experiment.length_control" if exp.length_control is not None
              else "the shortest of the sets' median lengths (experiment.length_control: null)")
    drop = exp.length_short_texts == "drop"
    pool, index, kept, cut_lengths = [], {}, {}, {}
    for label, ts in sets.items():
        lengths = features.lengths[ts.index]
        chosen = ts.index[lengths >= tokens] if drop else ts.index
        kept[label] = (len(chosen), int((lengths < tokens).sum()))
        cut_lengths[label] = np.minimum(features.lengths[chosen], tokens)
        index[label] = np.arange(len(pool), len(pool) + len(chosen))
        pool += [truncate_to_tokens(features.texts[i], tokens) for i in chosen]
    too_few = {label: n for label, (n, _) in kept.items() if n < 2}
    matched = LengthMatched(tokens=tokens, features=None, index=index)
    if not too_few:
        matched.features = SetFeatures.build(pool, None, features.vocab_size, features.bleu_references, seed)
    for label in sets:
        entry = {"tokens": tokens, "tokens_from": source, "n_texts": kept[label][0], "n_shorter": kept[label][1],
                 "shorter_texts": "left out" if drop else "kept whole",
                 "mean_tokens": float(cut_lengths[label].mean()) if cut_lengths[label].size else float("nan")}
        if too_few:
            entry["skipped"] = f"fewer than 2 texts with >= {tokens} tokens in {too_few}"
        else:
            values = matched.features.values(index[label])
            entry.update(values)
            entry["undefined"] = matched.features.undefined_reasons(index[label], values)
        matched.entries[label] = entry
    return matched


def mean_length(ma: float, mb: float, what: str = "whole texts") -> dict:
    """Mean lengths in tokens of two sets and whether they differ by more than LENGTH_FLAG."""
    rel = abs(ma - mb) / max(min(ma, mb), 1e-12)
    out = {"mean_tokens": [ma, mb], "relative_difference": rel, "threshold": LENGTH_FLAG, "differ": rel > LENGTH_FLAG}
    if out["differ"]:
        out["note"] = (f"mean lengths of {what} differ by {100 * rel:.0f}% (> {100 * LENGTH_FLAG:.0f}%): their "
                       "lexical metrics are confounded with length"
                       + ("; read comparison.length_matched" if what == "whole texts" else ""))
    return out


def _safe_compare(x, y, n_boot: int, seed: int, unit: str) -> dict:
    """``measure.stats.compare`` with the unit named; a comparison with < 2 units per side says why it is absent."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    nx, ny = int(np.sum(~np.isnan(x))), int(np.sum(~np.isnan(y)))
    if nx < 2 or ny < 2:
        return {"skipped": f"needs >= 2 {unit}s per side; got {nx} and {ny} (lower experiment.chunk_size "
                           "or sample more)", "n": [nx, ny], "unit": unit}
    return {**compare(x, y, n_boot, seed), "unit": unit}


def same_texts(features: SetFeatures, idx_a, idx_b) -> bool:
    """The two subsets hold the same texts (as multisets)."""
    return sorted(features.texts[i] for i in idx_a) == sorted(features.texts[i] for i in idx_b)


def set_level(features: SetFeatures, idx_a: np.ndarray, idx_b: np.ndarray, metrics: Sequence[str],
              exp: ExperimentConfig, seed: int) -> Dict[str, dict]:
    """Per metric: the ``equal_n`` block and the permutation test of sets ``idx_a`` vs ``idx_b``."""
    same = same_texts(features, idx_a, idx_b)
    matched = equal_n_values(lambda idx: features.values(idx, metrics), idx_a, idx_b, exp.equal_n_draws, seed)
    rng = np.random.default_rng(seed)
    cap = [np.sort(rng.choice(i, exp.permutation_max_n, replace=False)) if i.size > exp.permutation_max_n else i
           for i in (idx_a, idx_b)]
    if same:
        perm = {m: {"permutation_p": 1.0, "n_permutations": 0, "permutation_n": [len(c) for c in cap],
                    "no_difference": IDENTICAL} for m in metrics}
    else:
        perm = permutation_test_sets(lambda idx: features.values(idx, metrics), cap[0], cap[1], metrics,
                                     exp.n_permutations, seed)
    out = {}
    for m in metrics:
        a, b = matched["a"][m], matched["b"][m]
        block = {"n": matched["n"], "n_matched": matched["n_matched"], "n_draws": matched["n_draws"], "a": a, "b": b,
                 "diff": 0.0 if same else a - b}
        if m in matched["draws_sd"]:
            block["draws_sd"] = matched["draws_sd"][m]
        out[m] = {"equal_n": block, **perm[m]}
    return out


def clusters_equal_n(a, b, exp: ExperimentConfig, seed: int) -> dict:
    """k (None without structure) of both sets at the smaller n: the larger set subsampled CLUSTER_DRAWS times."""
    rows = {"a": a.sbert[a.embedded], "b": b.sbert[b.embedded]}
    m = min(len(rows["a"]), len(rows["b"]))
    rng = np.random.default_rng(seed)
    out: dict = {"n": [len(rows["a"]), len(rows["b"])], "n_matched": m, "n_draws": 0,
                 "test": "none: each evaluation is a k-means sweep over k_min..k_max"}
    for side, ts in (("a", a), ("b", b)):
        X = rows[side]
        if len(X) == m:
            ks = [ts.clustering.reported_k]
        else:
            out["n_draws"] = CLUSTER_DRAWS
            ks = [choose_k(X[np.sort(rng.choice(len(X), m, replace=False))], exp.k_min, exp.k_max,
                           seed=seed, min_silhouette=exp.min_silhouette).reported_k for _ in range(CLUSTER_DRAWS)]
        found = [k for k in ks if k is not None]
        out[side] = {"k": float(np.mean(found)) if found else None, "k_draws": ks,
                     "no_structure_share": 1 - len(found) / len(ks)}
    return out


def compare_sets(a, b, features: SetFeatures, matched: LengthMatched, exp: ExperimentConfig,
                 seed: int = 0) -> Dict[str, dict]:
    """``a`` vs ``b`` (``TextSet``s of one pool) for every metric; see the module docstring."""
    same = same_texts(features, a.index, b.index)
    out: Dict[str, dict] = {}
    b_chunks = a.chunks if same else b.chunks  # the same texts: one set against itself
    for metric in features.metrics:
        out[metric] = _safe_compare(a.chunks[metric], b_chunks[metric], exp.n_bootstrap, seed, unit="chunk")
    lexical = [m for m in features.metrics if m not in SBERT_METRICS]
    sbert = [m for m in features.metrics if m in SBERT_METRICS]
    blocks = set_level(features, a.index, b.index, lexical, exp, seed)
    if sbert:  # over the embedded texts (all of them unless a set is larger than experiment.sbert_max_texts)
        blocks.update(set_level(features, a.index[a.embedded], b.index[b.embedded], sbert, exp, seed))
    for metric, block in blocks.items():
        out[metric].update(block)
    for metric in PER_TEXT:
        out[metric] = _safe_compare(a.per_text[metric], b.per_text[metric], exp.n_bootstrap, seed, unit="text")
    out["clusters_k"] = clusters_equal_n(a, b, exp, seed)
    out["mean_length"] = mean_length(float(np.mean(a.per_text["length_words"])),
                                     float(np.mean(b.per_text["length_words"])))
    if out["mean_length"]["differ"]:
        log.warning("%s vs %s: %s", a.label, b.label, out["mean_length"]["note"])
    ea, eb = matched.entries[a.label], matched.entries[b.label]
    lm: dict = {"tokens": matched.tokens, "shorter_texts": ea["shorter_texts"],
                "mean_length": mean_length(ea["mean_tokens"], eb["mean_tokens"], f"texts cut to {matched.tokens}")}
    if matched.features is None:
        lm["skipped"] = matched.entries[a.label].get("skipped")
    else:
        lm.update(set_level(matched.features, matched.index[a.label], matched.index[b.label], LEXICAL_METRICS, exp,
                            seed))
    out["length_matched"] = lm
    if same:
        out["no_difference"] = IDENTICAL
    out["labels"] = [a.label, b.label]
    return out

"""Diversity of categorical attributes (Experiment 1: names, genders, ages, nationalities, ethnicities, types).

Pure functions over lists of attribute values. ``None`` marks a value that could not be read and is left
out of every distribution (its share is what ``missing_share`` reports). Values are compared as strings, so
ages given as ints match a ground-truth JSON whose keys are "32".

Counted statistics depend on n: the plug-in entropy cannot exceed log2 n and falls with n, the number of distinct
values grows with n. ``chao_shen_entropy_bits`` adjusts the plug-in entropy for unseen values (Chao and Shen
2003); ``compare_at_equal_n`` compares two sets at the smaller set's n (the larger subsampled without
replacement, averaged over draws), with a permutation test that keeps the group sizes and a bootstrap interval.
``truth_distribution`` reads an attribute's true distribution from the tiny world's ground-truth JSON (its
keys are the candidate values of the exact, teacher-forced distributions of ``measure.exact_attributes``).
"""
from __future__ import annotations

from collections import Counter
from typing import Dict, Hashable, Iterable, List, Optional, Sequence

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


def truth_distribution(truth: Optional[dict], attribute: str) -> Optional[Dict[str, float]]:
    """The true marginal distribution of ``attribute`` in a tiny-world ground-truth JSON (names marginalised over
    nationality: ``first_names_given_nationality`` weighted by ``nationality``), renormalised; None if absent."""
    if not truth:
        return None
    if isinstance(truth.get(attribute), dict):
        probs = {str(k): float(v) for k, v in truth[attribute].items()}
    else:
        by_nat = truth.get(f"{attribute}s_given_nationality")  # first_names_given_nationality, last_names_...
        if not isinstance(by_nat, dict) or not isinstance(truth.get("nationality"), dict):
            return None
        probs = {}
        for nat, p_nat in truth["nationality"].items():
            for value, p in by_nat.get(nat, {}).items():
                probs[str(value)] = probs.get(str(value), 0.0) + float(p_nat) * float(p)
    total = sum(probs.values())
    return {k: v / total for k, v in probs.items()} if total > 0 else None


# ---------------------------------------------------------------- statistics of count rows (vectorised)

def _plugin_bits(counts: np.ndarray, n: int) -> np.ndarray:
    p = counts / n
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, -p * np.log2(p), 0.0).sum(axis=1)


def _chao_shen_bits(counts: np.ndarray, n: int) -> np.ndarray:
    """Chao-Shen (2003): coverage C = 1 - f1/n (f1 singletons; f1 = n is set to n - 1), p_a = C p_hat, and the
    Horvitz-Thompson sum -sum p_a ln p_a / (1 - (1 - p_a)^n), in bits."""
    f1 = (counts == 1).sum(axis=1).astype(np.float64)
    f1 = np.where(f1 >= n, n - 1, f1)
    coverage = 1.0 - f1 / n
    pa = coverage[:, None] * counts / n
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(counts > 0, -pa * np.log(pa) / (1.0 - (1.0 - pa) ** n), 0.0)
    return terms.sum(axis=1) / np.log(2.0)


def _distinct(counts: np.ndarray, n: int) -> np.ndarray:
    return (counts > 0).sum(axis=1).astype(np.float64)


# statistics of a set of values that depend on its size n (each a function of (rows x values) count matrices)
COUNTED_STATISTICS = {"entropy_bits": _plugin_bits, "entropy_chao_shen_bits": _chao_shen_bits, "distinct": _distinct}


def chao_shen_entropy_bits(values: Iterable[Optional[Hashable]]) -> float:
    """Coverage-adjusted entropy (bits) of ``values`` (Chao and Shen 2003): above the plug-in entropy when many
    values are seen once (unseen values are likely); equal to it when every value is seen often."""
    counts = np.array(list(Counter(_present(values)).values()), dtype=np.float64)
    if counts.size == 0:
        raise ValueError("chao_shen_entropy_bits needs at least one value that is not None")
    return float(_chao_shen_bits(counts[None, :], int(counts.sum()))[0])


def _row_counts(codes: np.ndarray, n_values: int) -> np.ndarray:
    """(rows, n_values) counts of the integer codes of each row of ``codes``."""
    rows = codes.shape[0]
    flat = (codes + np.arange(rows)[:, None] * n_values).ravel()
    return np.bincount(flat, minlength=rows * n_values).reshape(rows, n_values).astype(np.float64)


def _side_at_m(codes: np.ndarray, m: int, draws: int, rng, n_values: int, names: Sequence[str]) -> Dict[str, np.ndarray]:
    """Each statistic of every row of ``codes`` (rows, n) at size m: the row itself when n == m, else the mean over
    ``draws`` subsamples of m without replacement."""
    rows, n = codes.shape
    if n == m:
        counts = _row_counts(codes, n_values)
        return {s: COUNTED_STATISTICS[s](counts, m) for s in names}
    pick = np.argsort(rng.random((rows, draws, n)), axis=2)[:, :, :m]
    sub = codes[np.arange(rows)[:, None, None], pick].reshape(rows * draws, m)
    counts = _row_counts(sub, n_values)
    return {s: COUNTED_STATISTICS[s](counts, m).reshape(rows, draws).mean(axis=1) for s in names}


def at_equal_n(a: Sequence, b: Sequence, statistics: Sequence[str] = ("entropy_bits",), draws: int = 50,
               seed: int = 0) -> Dict[str, tuple]:
    """{statistic: (value of a, value of b, n_matched)}: both at the smaller n, the larger side subsampled without
    replacement ``draws`` times and averaged (statistics with fewer than 2 values per side are left out)."""
    out = compare_at_equal_n(a, b, statistics, draws=draws, n_perm=0, seed=seed)
    return {s: (*out[s]["values_at_n_matched"], out[s]["n_matched"]) for s in statistics if "skipped" not in out[s]}


def compare_at_equal_n(a: Sequence, b: Sequence, statistics: Sequence[str] = ("entropy_bits", "distinct"),
                       draws: int = 20, n_perm: int = 1000, seed: int = 0) -> Dict[str, dict]:
    """``a`` vs ``b`` for statistics of a whole set of values that depend on n, at equal n.

    n_matched = min(len(a), len(b)); the larger set is subsampled without replacement to n_matched ``draws`` times
    and its statistic averaged, so a set and a random subsample of it differ by noise only. Per statistic: ``diff``
    (a - b at n_matched), ``values_at_n_matched``, ``diff_unmatched`` (at the full sizes, for contrast), and a
    two-sided permutation test: labels shuffled ``n_perm`` times keeping both group sizes, the same matched
    statistic each time; ``permutation_p`` and ``null_diff_95``, the central 95% of the differences under
    shuffling (how large a difference chance alone makes at these sizes). There is no bootstrap interval: resampling
    with replacement repeats values, which lowers a counted statistic more in the smaller set, so its interval would
    be off centre. ``None`` values are left out; values compare as strings.
    """
    a, b = _present(a), _present(b)
    unknown = [s for s in statistics if s not in COUNTED_STATISTICS]
    if unknown:
        raise ValueError(f"statistics: {unknown} unknown; accepted {list(COUNTED_STATISTICS)}")
    if len(a) < 2 or len(b) < 2:
        return {s: {"skipped": f"needs >= 2 values per side; got {len(a)} and {len(b)}", "n": [len(a), len(b)]}
                for s in statistics}
    index = {v: i for i, v in enumerate(dict.fromkeys(a + b))}
    ca, cb = np.array([index[v] for v in a]), np.array([index[v] for v in b])
    m, n_values, rng = min(len(a), len(b)), len(index), np.random.default_rng(seed)

    def matched(rows_a: np.ndarray, rows_b: np.ndarray) -> Dict[str, tuple]:
        sa = _side_at_m(rows_a, m, draws, rng, n_values, statistics)
        sb = _side_at_m(rows_b, m, draws, rng, n_values, statistics)
        return {s: (sa[s], sb[s]) for s in statistics}

    observed = matched(ca[None, :], cb[None, :])
    full = {s: (COUNTED_STATISTICS[s](_row_counts(ca[None, :], n_values), len(a))[0],
                COUNTED_STATISTICS[s](_row_counts(cb[None, :], n_values), len(b))[0]) for s in statistics}
    if n_perm:
        pooled = np.concatenate([ca, cb])
        order = np.argsort(rng.random((n_perm, pooled.size)), axis=1)
        perms = matched(pooled[order[:, :len(a)]], pooled[order[:, len(a):]])
    out = {}
    for s in statistics:
        va, vb = float(observed[s][0][0]), float(observed[s][1][0])
        diff = va - vb
        block = {"diff": diff, "values_at_n_matched": [va, vb], "n": [len(a), len(b)], "n_matched": m,
                 "draws": draws if len(a) != len(b) else 0, "diff_unmatched": float(full[s][0] - full[s][1]),
                 "values_unmatched": [float(full[s][0]), float(full[s][1])]}
        if n_perm:
            d = perms[s][0] - perms[s][1]
            extreme = int(np.sum(np.abs(d) >= abs(diff) - 1e-12))
            block.update({"permutation_p": (1 + extreme) / (1 + n_perm), "n_permutations": n_perm,
                          "null_diff_95": [float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))]})
        block["unit"] = "value (sets compared at n_matched; permutation over values, group sizes kept)"
        out[s] = block
    return out


# ---------------------------------------------------------------- a per-token score broken down by card field

def sum_by_field(token_values: Sequence[float], token_ends: Sequence[int], spans: Sequence[tuple],
                 text_length: int) -> Dict[str, float]:
    """Sum of a per-token score (e.g. log pi - log pi_0, nats) over the tokens of each card field.

    ``token_ends[j]`` is the character offset where token j ends in the decoded text (tokens are contiguous, the
    first starts at 0); ``spans`` are ``measure.persona_parse.field_spans`` of that text. A token belongs to the
    field holding its first character; tokens that add no text at its end (EOS) go to ``end_of_text``.
    The sums over fields add up to the sum over all tokens.
    """
    if len(token_values) != len(token_ends):
        raise ValueError(f"token_values ({len(token_values)}) and token_ends ({len(token_ends)}) differ in length")
    out: Dict[str, float] = {}
    start = 0
    for value, end in zip(token_values, token_ends):
        if start >= text_length:
            name = "end_of_text"
        else:
            name = next((f for f, lo, hi in spans if lo <= start < hi), "preamble")
        out[name] = out.get(name, 0.0) + float(value)
        start = max(start, int(end))
    return out


def fields_in_order(names: Iterable[str]) -> List[str]:
    """Field names in card order (``FIELDS``), then any others (``preamble``, ``name``, ``end_of_text``)."""
    names = list(dict.fromkeys(names))
    return [f for f in FIELDS if f in names] + [f for f in names if f not in FIELDS]

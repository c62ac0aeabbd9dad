"""Exact attribute distributions by teacher forcing: a forced choice over a known set of values.

Given a context that ends where an attribute's value begins (a persona card up to "Nationality:") and the
candidate values written as the model would write them (" American\\n", " German\\n", ...: the value and the
token that ends the field), the chain rule gives each candidate's probability exactly; ``measure.scoring``
computes it under a model (one cached context, the candidates' trie packed over it). Renormalised over the
candidates it is the model's distribution over the value set, with no sampling error; the mass the model puts on
the set before renormalising is the *covered mass* (1: the model writes nothing but known values).

Here, pure functions of the (contexts x candidates) matrix of log-probabilities: covered mass, the entropy of each
context's distribution (``conditional_entropy_bits``, averaged over contexts), the entropy of the context-averaged
distribution (``marginal_entropy_bits``), KL(model || base) per context in nats, each with a bootstrap over
contexts; two models on the same contexts are compared by resampling the same contexts for both (a paired
bootstrap), so a model against itself gives a difference and a KL of exactly 0.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
from scipy.special import logsumexp

from measure.metrics.entropy import entropy_bits


def _matrix(logprobs) -> np.ndarray:
    lp = np.asarray(logprobs, dtype=np.float64)
    if lp.ndim != 2 or lp.shape[0] == 0 or lp.shape[1] == 0:
        raise ValueError(f"logprobs must be a non-empty (contexts, candidates) matrix; got shape {lp.shape}")
    if np.isnan(lp).any() or np.isposinf(lp).any():
        raise ValueError("logprobs must be log-probabilities (<= 0, no NaN)")
    return lp


def renormalise(logprobs) -> tuple[np.ndarray, np.ndarray]:
    """(log q, covered mass): log of each context's distribution renormalised over the candidates, and the
    probability the model put on the candidate set before renormalising (both per row of ``logprobs``)."""
    lp = _matrix(logprobs)
    total = logsumexp(lp, axis=1)
    if np.isneginf(total).any():
        raise ValueError("a context gives every candidate probability 0; nothing to renormalise")
    return lp - total[:, None], np.exp(total)


def kl_nats(log_p, log_q) -> np.ndarray:
    """KL(p || q) = sum_k p_k (log p_k - log q_k) in nats, per row of two matrices of log-probabilities."""
    log_p, log_q = np.asarray(log_p, dtype=np.float64), np.asarray(log_q, dtype=np.float64)
    if log_p.shape != log_q.shape:
        raise ValueError(f"KL needs matrices of one shape; got {log_p.shape} and {log_q.shape}")
    p = np.exp(log_p)
    with np.errstate(invalid="ignore"):
        terms = np.where(p > 0, p * (log_p - log_q), 0.0)
    return terms.sum(axis=1)


def bootstrap_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) resampling weights: row b holds how often each of n items is drawn in resample b, over n."""
    if n < 1 or n_boot < 1:
        raise ValueError(f"bootstrap_weights needs n >= 1 and n_boot >= 1; got {n} and {n_boot}")
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    counts = np.zeros((n_boot, n))
    np.add.at(counts, (np.arange(n_boot)[:, None], idx), 1.0)
    return counts / n


def _interval(point: float, boots: np.ndarray, n: int, basic: bool = False) -> dict:
    """{mean, ci95, n_contexts}: the percentile interval of ``boots``; or, with ``basic``, for a statistic biased
    under resampling, the basic (reverse percentile) interval [2 point - q97.5, 2 point - q2.5] and the
    ``bias_corrected`` estimate 2 point - mean(boots) it is centred on."""
    lo, hi = float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))
    if not basic:
        return {"mean": float(point), "ci95": [lo, hi], "n_contexts": int(n)}
    return {"mean": float(point), "bias_corrected": float(2 * point - np.mean(boots)),
            "ci95": [float(2 * point - hi), float(2 * point - lo)], "ci95_method": "basic bootstrap",
            "n_contexts": int(n)}


def exact_summary(logprobs, n_boot: int = 2000, seed: int = 0) -> Dict[str, object]:
    """One model's forced-choice statistics over contexts, each ``{mean, ci95, n_contexts}`` (bootstrap over contexts).

    ``marginal_entropy_bits``: entropy of the context-averaged distribution (``mean`` is its value on all contexts).
    The entropy of a mixture of n contexts is biased low (fewer contexts mix less: O(1/n)), and a resample, which
    repeats contexts, more so; so it comes with ``bias_corrected`` (2 mean - mean of the resamples) and the basic
    bootstrap interval centred on it, which may lie a little above ``mean``. ``conditional_entropy_bits``: mean
    over contexts of each context's entropy; ``covered_mass``: mean mass on the candidate set before renormalising
    (plus its ``min`` over contexts). Percentile intervals for the means.
    """
    log_q, covered = renormalise(logprobs)
    q = np.exp(log_q)
    n = q.shape[0]
    conditional = entropy_bits(q, axis=1)
    w = bootstrap_weights(n, n_boot, seed)
    return {
        "marginal_entropy_bits": _interval(entropy_bits(q.mean(0)), entropy_bits(w @ q, axis=1), n, basic=True),
        "conditional_entropy_bits": _interval(conditional.mean(), w @ conditional, n),
        "covered_mass": {**_interval(covered.mean(), w @ covered, n), "min": float(covered.min())},
        "n_candidates": int(q.shape[1]),
    }


def paired_comparison(logprobs_model, logprobs_base, n_boot: int = 2000, seed: int = 0) -> Dict[str, object]:
    """Model vs base on the same contexts and candidates: KL(model || base) per context (``conditional_kl_nats``,
    mean over contexts) and the differences model - base of marginal and conditional entropy (bits), with
    intervals from one bootstrap over contexts shared by both models (paired)."""
    lm, _ = renormalise(logprobs_model)
    lb, _ = renormalise(logprobs_base)
    if lm.shape != lb.shape:
        raise ValueError(f"paired_comparison needs the same contexts and candidates; got {lm.shape} and {lb.shape}")
    qm, qb = np.exp(lm), np.exp(lb)
    n = qm.shape[0]
    w = bootstrap_weights(n, n_boot, seed)
    kl = np.maximum(kl_nats(lm, lb), 0.0)  # >= 0 in exact arithmetic; float noise below 0 is clipped
    cond = entropy_bits(qm, axis=1) - entropy_bits(qb, axis=1)
    marg_point = entropy_bits(qm.mean(0)) - entropy_bits(qb.mean(0))
    marg_boot = entropy_bits(w @ qm, axis=1) - entropy_bits(w @ qb, axis=1)
    return {"conditional_kl_nats": _interval(kl.mean(), w @ kl, n),
            "marginal_entropy_diff_bits": _interval(marg_point, marg_boot, n, basic=True),
            "conditional_entropy_diff_bits": _interval(cond.mean(), w @ cond, n),
            "direction": "model - base"}


def marginal_top(logprobs, values: Sequence[str], k: int = 10) -> List[tuple]:
    """The ``k`` most probable values of the context-averaged distribution, as (value, probability)."""
    log_q, _ = renormalise(logprobs)
    if len(values) != log_q.shape[1]:
        raise ValueError(f"values: {len(values)} names for {log_q.shape[1]} candidates")
    marginal = np.exp(log_q).mean(0)
    order = np.argsort(-marginal, kind="stable")[:k]
    return [(str(values[i]), float(marginal[i])) for i in order]

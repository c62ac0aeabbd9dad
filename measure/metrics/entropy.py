"""Token-level entropy (Experiment 3, Eq. 3.2), in bits."""
from __future__ import annotations

import numpy as np


def entropy_bits(probs: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in bits of (unnormalised) probability vectors along ``axis``; 0 log 0 = 0.

    The vectors are renormalised first, so a top-k slice gives the entropy of the top-k distribution.
    """
    p = np.asarray(probs, dtype=np.float64)
    if np.any(p < 0):
        raise ValueError(f"probs must be >= 0; got min {p.min()}")
    total = p.sum(axis=axis, keepdims=True)
    if np.any(total <= 0):
        raise ValueError("every probability vector needs a positive sum")
    q = p / total
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(q > 0, -q * np.log2(q), 0.0)
    return terms.sum(axis=axis)


def top_k_entropy_bits(topk_probs: np.ndarray) -> np.ndarray:
    """Eq. 3.2: entropy of the top-k next-token probabilities renormalised over the top k.

    Per token, in bits; bounded by log2(k) (2.32 bits for k = 5, as the paper states).
    """
    return entropy_bits(topk_probs, axis=-1)


def mean_per_completion(per_token: list) -> np.ndarray:
    """Average over each completion's tokens (the paper's per-completion score); empty ones are NaN."""
    return np.array([float(np.mean(t)) if len(t) else np.nan for t in per_token])

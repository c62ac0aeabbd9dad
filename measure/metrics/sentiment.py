"""Sentiment polarity with VADER (Hutto and Gilbert 2015), as in the paper's Figure 8."""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np


@lru_cache(maxsize=1)
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_compound(texts: Sequence[str]) -> np.ndarray:
    """VADER compound score of each text, in [-1, 1] (negative to positive)."""
    analyzer = _analyzer()
    return np.array([analyzer.polarity_scores(t)["compound"] for t in texts], dtype=np.float64)


def polarity_shares(compound: np.ndarray, threshold: float = 0.3) -> dict:
    """Shares of texts clearly negative (compound < -threshold) and clearly positive (> threshold)."""
    c = np.asarray(compound, dtype=np.float64)
    if c.size == 0:
        raise ValueError("polarity_shares needs at least one score")
    return {"neg_share": float((c < -threshold).mean()), "pos_share": float((c > threshold).mean())}

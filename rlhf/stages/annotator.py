"""The simulated annotator: a documented utility, an optional typicality bias, and Bradley-Terry noise.

Quality utility, in the spirit of helpful/harmless labelling (weights in ``AnnotatorConfig``):

    u_quality = w_sentiment  * VADER compound of the review (persona prompt) or of the whole text  [-1, 1]
              + w_enthusiasm * min(number of '!', 3) / 3                                            [0, 1]
              - w_rude       * share of sentences with a rude word (RUDE_WORDS)                     [0, 1]
              + w_complete   * share of the 8 card fields present (persona prompt only)             [0, 1]
              + w_finished   * [the text ended with EOS]                                            {0, 1}

It is indifferent, by construction, to names, ages, genders, nationalities, ethnicities and personality
types: no term reads them. Typicality bias (Zhang et al. 2025, "Verbalized Sampling", arXiv 2510.01171):
annotators favour text the base model finds likely, so the utility the labels come from is

    u = u_quality + alpha * log p_base(response | prompt)          (log-probability in nats)

where ``preferences.typicality`` says which log p_base (``typicality_logp``): ``sum`` (default) sums the
tokens' log-probabilities, the sequence log-likelihood that the KL-regularised optimum below is written in;
``per_token`` takes their mean, which does not grow with length. Which form Zhang et al. fit: their paper's
text could not be read here beyond its abstract, so its equations were not checked. Their released analysis
script (CHATS-lab/verbalized-sampling, ``analyse/reg-share.py``, as stored in the search index) measures "the
average per-token logprob" of each HelpSteer response under Llama-3.1-405B base and fits alpha as the
coefficient of the difference of those means in a Bradley-Terry logistic regression on within-prompt pairs,
with the correctness difference as a covariate. So their alpha ~ 0.57 is, as far as that script shows, a
weight on the per-token mean (``per_token``), not on the summed log-likelihood; with ``sum`` the same alpha
weighs log p_base ~ length times more (and makes "shorter is better" part of the bias).

A pair (A, B) is labelled A-preferred with the Bradley-Terry probability sigmoid((u_A - u_B) / bt_scale).
Under a KL-regularised optimum (``sum`` form) this predicts pi*(y) ~ p_base(y)^(1 + alpha/beta)
exp(u_quality(y) / beta): every attribute sharpens when alpha > 0, including those u_quality ignores.
"""
from __future__ import annotations

import math
import re
from typing import Dict, Sequence, Tuple

import numpy as np

from measure.metrics.sentiment import vader_compound
from measure.persona_parse import FIELDS, parse_persona
from rlhf.config import AnnotatorConfig, PreferencesConfig

# Words a polite reviewer avoids (the tiny world's harshest reviews use several of them).
RUDE_WORDS = ("hate", "garbage", "stupid", "idiot", "idiotic", "crap", "sucks", "useless", "trash", "awful",
              "worst", "disaster", "angry", "pathetic", "junk")
_RUDE_RE = re.compile(r"\b(" + "|".join(RUDE_WORDS) + r")\b", re.IGNORECASE)
_SENTENCE_RE = re.compile(r"[^.!?\n]+[.!?]*")


def rude_share(text: str) -> float:
    """Share of the sentences of ``text`` that contain a rude word (0 for text without sentences)."""
    sentences = [s for s in _SENTENCE_RE.findall(text) if s.strip()]
    if not sentences:
        return 0.0
    return sum(bool(_RUDE_RE.search(s)) for s in sentences) / len(sentences)


def enthusiasm(text: str) -> float:
    """min(number of exclamation marks, 3) / 3."""
    return min(text.count("!"), 3) / 3.0


def quality_terms(text: str, is_persona: bool, stopped_at_eos: bool) -> Dict[str, float]:
    """The unweighted terms of u_quality for one response (see the module docstring)."""
    if is_persona:
        card = parse_persona(text)
        judged = card.review or ""
        complete = 1.0 - len(card.missing) / len(FIELDS)
    else:
        judged, complete = text, 0.0
    sentiment = float(vader_compound([judged])[0]) if judged.strip() else 0.0
    return {"sentiment": sentiment, "enthusiasm": enthusiasm(judged), "rude": rude_share(judged),
            "complete": complete, "finished": float(stopped_at_eos)}


def quality_utility(terms: Dict[str, float], cfg: AnnotatorConfig) -> float:
    """u_quality: the weighted sum of ``quality_terms``."""
    return (cfg.w_sentiment * terms["sentiment"] + cfg.w_enthusiasm * terms["enthusiasm"]
            - cfg.w_rude * terms["rude"] + cfg.w_complete * terms["complete"] + cfg.w_finished * terms["finished"])


TYPICALITY_FORMS = PreferencesConfig.TYPICALITY_FORMS  # preferences.typicality: how log p_base enters the utility


def typicality_logp(token_probs: Sequence[float], form: str) -> float:
    """The typicality term's log p_base(response), in nats: the sum of its tokens' log-probabilities
    (``form="sum"``) or their mean per token (``"per_token"``); a response of 0 tokens gives 0.0."""
    if form not in TYPICALITY_FORMS:
        raise ValueError(f"form: {form!r} is out of range; accepted {' | '.join(TYPICALITY_FORMS)}")
    logs = np.log(np.clip(np.asarray(token_probs, dtype=np.float64), 1e-300, None))
    if logs.size == 0:
        return 0.0
    return float(logs.sum() if form == "sum" else logs.mean())


def sequence_logprob(token_probs: Sequence[float]) -> float:
    """log p_base(response): the sum of the log-probabilities of its tokens, in nats."""
    return typicality_logp(token_probs, "sum")


def utility(u_quality: float, logp_base: float, alpha: float) -> float:
    """u = u_quality + alpha * log p_base (the typicality-biased utility)."""
    if alpha < 0:
        raise ValueError(f"alpha: {alpha} is out of range; accepted alpha >= 0")
    return u_quality + alpha * logp_base


def preference_probability(u_a, u_b, bt_scale: float = 1.0) -> np.ndarray:
    """Bradley-Terry: P(A preferred over B) = sigmoid((u_A - u_B) / bt_scale)."""
    if bt_scale <= 0:
        raise ValueError(f"bt_scale: {bt_scale} is out of range; accepted bt_scale > 0")
    z = (np.asarray(u_a, dtype=np.float64) - np.asarray(u_b, dtype=np.float64)) / bt_scale
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function, without overflow


def label_pairs(u_a, u_b, bt_scale: float, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Noisy labels: (a_preferred bool array, P(A preferred)) drawn from the Bradley-Terry model."""
    p = preference_probability(u_a, u_b, bt_scale)
    return rng.random(p.shape) < p, p


def bt_accuracy_ceiling(p: np.ndarray) -> float:
    """The best accuracy any reward model can reach on labels drawn with probabilities ``p``: E[max(p, 1-p)]."""
    p = np.asarray(p, dtype=np.float64)
    return float(np.mean(np.maximum(p, 1.0 - p))) if p.size else math.nan

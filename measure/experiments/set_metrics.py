"""The set-level diversity metrics of any subset of a pool of texts, from features computed once.

Comparisons evaluate each set metric on many subsets of one pool: the whole sets, disjoint chunks, equal-n
subsamples, permutations. ``SetFeatures`` tokenises and counts the pool once (``NgramIndex``, term counts,
SBERT rows) and ``values(indices)`` computes every metric of the texts at those indices, so each metric has
one definition whatever the subset (the full-set value and the chunk values cannot disagree by construction,
as full-set and chunk EAD once did). ``values`` is a function of the subset: self-BLEU's reference sample is
seeded by the subset itself.

Metrics (higher = more diverse unless marked):
- ``distinct_1/2/3``: ``measure.metrics.lexical.distinct_n``;
- ``ead_1to5``: mean EAD over n = 1..5 (``lexical.ead``, n-gram space V ** n);
- ``self_bleu_4`` (higher = less diverse): each text's BLEU-4 against the set's other texts, averaged. Against
  every other text when the set has at most ``bleu_references`` + 1 texts (exact); above that, against a fixed
  seeded sample of ``bleu_references`` texts of the set, which keeps the cost linear in n and makes the value
  independent of n (BLEU rises with the number of references). Texts with fewer than 4 tokens have no BLEU-4;
- ``compression_ratio`` (higher = less diverse): gzip over the texts joined, in pool order;
- ``tfidf_cosine``, ``sbert_cosine`` (higher = less diverse): mean pairwise cosine; TF-IDF fitted on the subset
  alone, over the texts that have a TF-IDF term;
- ``vendi_sbert``: Vendi score of the SBERT cosine kernel.
SBERT metrics are computed over the texts of the subset that have an embedding (NaN rows: not embedded; large
sets embed a seeded sample, ``experiment.sbert_max_texts``). A metric with nothing to measure is NaN and
``undefined_reasons`` says why.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from measure.metrics.lexical import compression_ratio, ead_from_counts
from measure.metrics.ngram_index import NgramIndex
from measure.metrics.similarity import pairwise_cosine_mean, term_counts, tfidf_from_counts, vendi_score

LEXICAL_METRICS = ("distinct_1", "distinct_2", "distinct_3", "ead_1to5", "self_bleu_4", "compression_ratio",
                   "tfidf_cosine")
SBERT_METRICS = ("sbert_cosine", "vendi_sbert")  # over the texts with an embedding (``SetFeatures.embedded``)
SET_METRICS = LEXICAL_METRICS + SBERT_METRICS
BLEU_ORDER = 4
EAD_ORDERS = 5


@dataclass
class SetFeatures:
    """Per-text features of a pool of texts; ``values(idx)`` gives the set metrics of any subset."""

    texts: List[str]
    ngrams: NgramIndex
    counts: object  # scipy sparse (n, terms): TfidfVectorizer's term counts
    sbert: Optional[np.ndarray]  # (n, 384) unit rows (NaN rows: not embedded), or None: lexical metrics only
    vocab_size: int  # V of EAD
    bleu_references: int  # self-BLEU: references per set above which a seeded sample is used
    seed: int = 0

    @classmethod
    def build(cls, texts: Sequence[str], sbert: Optional[np.ndarray], vocab_size: int, bleu_references: int = 500,
              seed: int = 0) -> "SetFeatures":
        texts = list(texts)
        if sbert is not None and len(sbert) != len(texts):
            raise ValueError(f"sbert: {len(sbert)} rows for {len(texts)} texts")
        if bleu_references < 2:
            raise ValueError(f"bleu_references: {bleu_references} is out of range; accepted >= 2")
        return cls(texts=texts, ngrams=NgramIndex(texts, max_n=EAD_ORDERS), counts=term_counts(texts),
                   sbert=None if sbert is None else np.asarray(sbert), vocab_size=vocab_size,
                   bleu_references=bleu_references, seed=seed)

    @property
    def embedded(self) -> np.ndarray:
        """Which texts have an SBERT row."""
        if self.sbert is None:
            return np.zeros(len(self.texts), dtype=bool)
        return np.isfinite(self.sbert[:, 0])

    @property
    def metrics(self) -> tuple:
        return SET_METRICS if self.sbert is not None else LEXICAL_METRICS

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per text (``measure.metrics.lexical.words``)."""
        return self.ngrams.lengths

    def bleu_reference_sample(self, idx: np.ndarray) -> np.ndarray:
        """The references of subset ``idx``: all of it up to ``bleu_references`` + 1 texts, else a sample seeded
        by the subset itself (the same subset always gets the same references)."""
        if idx.size <= self.bleu_references + 1:
            return idx
        rng = np.random.default_rng([self.seed, zlib.crc32(idx.tobytes())])
        return np.sort(rng.choice(idx, self.bleu_references, replace=False))

    def values(self, idx, metrics: Optional[Sequence[str]] = None) -> Dict[str, float]:
        """Every set metric (or those named) of the texts at indices ``idx`` (distinct indices, any order)."""
        idx = np.sort(np.asarray(idx, dtype=np.int64))
        metrics = self.metrics if metrics is None else tuple(metrics)
        out: Dict[str, float] = {}
        if any(m.startswith("distinct_") or m == "ead_1to5" for m in metrics):
            counts = {k: self.ngrams.counts(idx, k) for k in range(1, EAD_ORDERS + 1)}
            for k in (1, 2, 3):
                if f"distinct_{k}" in metrics:
                    unique, total = counts[k]
                    out[f"distinct_{k}"] = unique / total if total else float("nan")
            if "ead_1to5" in metrics:
                eads = [ead_from_counts(*counts[k], k, self.vocab_size) for k in counts]
                eads = [v for v in eads if not np.isnan(v)]
                out["ead_1to5"] = float(np.mean(eads)) if eads else float("nan")
        if "self_bleu_4" in metrics:
            out["self_bleu_4"] = self._self_bleu(idx)
        if "compression_ratio" in metrics:
            chosen = [self.texts[i] for i in idx]
            out["compression_ratio"] = compression_ratio(chosen) if any(chosen) else float("nan")
        if "tfidf_cosine" in metrics:
            out["tfidf_cosine"] = self._tfidf_mean(idx)
        if any(m in SBERT_METRICS for m in metrics):
            rows = self.sbert[idx[self.embedded[idx]]]
            if "sbert_cosine" in metrics:
                out["sbert_cosine"] = pairwise_cosine_mean(rows) if len(rows) >= 2 else float("nan")
            if "vendi_sbert" in metrics:
                out["vendi_sbert"] = vendi_score(rows) if len(rows) >= 1 else float("nan")
        return out

    def _self_bleu(self, idx: np.ndarray) -> float:
        if idx.size < 2:
            return float("nan")
        scores = self.ngrams.self_bleu_per_text(idx, self.bleu_reference_sample(idx), BLEU_ORDER)
        scores = scores[~np.isnan(scores)]
        return float(scores.mean()) if scores.size else float("nan")

    def tfidf_rows(self, idx) -> tuple:
        """(TF-IDF rows fitted on subset ``idx`` alone, mask of the rows that have a term)."""
        X = tfidf_from_counts(self.counts[np.sort(np.asarray(idx, dtype=np.int64))])
        return X, np.diff(X.indptr) > 0

    def _tfidf_mean(self, idx: np.ndarray) -> float:
        X, has_terms = self.tfidf_rows(idx)
        return pairwise_cosine_mean(X[has_terms]) if has_terms.sum() >= 2 else float("nan")

    def undefined_reasons(self, idx, values: Dict[str, float]) -> Dict[str, str]:
        """Why each NaN metric of ``values`` (computed on subset ``idx``) has nothing to measure."""
        idx = np.sort(np.asarray(idx, dtype=np.int64))
        lengths = self.lengths[idx]
        reasons = {}
        for metric, value in values.items():
            if not (isinstance(value, float) and np.isnan(value)):
                continue
            if idx.size < 2 and metric in ("self_bleu_4", "tfidf_cosine", "sbert_cosine"):
                reasons[metric] = f"needs >= 2 texts; got {idx.size}"
            elif metric.startswith("distinct_"):
                reasons[metric] = f"no text has {metric[-1]} tokens: there is no {metric[-1]}-gram to count"
            elif metric == "ead_1to5":
                reasons[metric] = "no text has a token"
            elif metric == "self_bleu_4":
                reasons[metric] = (f"no text has {BLEU_ORDER} tokens (longest: {int(lengths.max(initial=0))}): "
                                   f"BLEU-{BLEU_ORDER} needs a {BLEU_ORDER}-gram, and smoothing would invent one")
            elif metric == "tfidf_cosine":
                n_terms = int((np.diff(self.counts[idx].indptr) > 0).sum())
                reasons[metric] = ("empty TF-IDF vocabulary: no text has a word of 2+ characters" if n_terms == 0
                                   else f"only {n_terms} text has a TF-IDF term; a pair needs 2")
            elif metric == "compression_ratio":
                reasons[metric] = "every text is empty"
            else:
                reasons[metric] = "undefined on this set"
        return reasons

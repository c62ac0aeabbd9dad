"""Counted n-gram statistics (distinct-n, EAD, self-BLEU) of any subset of a fixed pool of texts, vectorised.

Set-level comparisons evaluate one metric on many subsets of one pool of texts: the whole sets, disjoint chunks,
equal-n subsamples, permutations. Tokenising and counting once (``NgramIndex(texts)``), then answering each
subset with numpy keeps an evaluation O(n-grams of the subset) and out of Python loops. The definitions are
those of ``measure.metrics.lexical`` (same tokens, same formulas); ``tests/test_lexical.py`` checks that the two
agree on random texts.

Layout: the tokens of all texts in one array; for each order k every position's k-gram gets an integer id, built
order by order (id_k = rank of id_{k-1} * W + next token, W the number of word types), and each text's distinct
k-grams are kept as (text, id, count) rows sorted by text, so the rows of a subset are contiguous slices.
Subsets are arrays of distinct text indices.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

import numpy as np

from measure.metrics.lexical import GPT2_VOCAB_SIZE, ead_from_counts, words


@dataclass
class _Order:
    """The distinct k-grams of every text: rows (text, gram id, count) sorted by text; ``offsets[t]`` is
    the first row of text t."""

    text: np.ndarray
    gram: np.ndarray
    count: np.ndarray
    offsets: np.ndarray  # (n_texts + 1,)
    n_grams: int  # distinct k-grams in the pool (ids are 0..n_grams-1)


class NgramIndex:
    """The k-grams (k = 1..max_n) of a pool of texts, for counted statistics of any subset of it."""

    def __init__(self, texts: Sequence[str], max_n: int = 5):
        if isinstance(texts, str):
            raise ValueError("texts must be a sequence of strings, not one string")
        if max_n < 1:
            raise ValueError(f"max_n: {max_n} is out of range; accepted max_n >= 1")
        tokens = [words(t) for t in texts]
        self.n_texts, self.max_n = len(tokens), max_n
        self.lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
        vocab: Dict[str, int] = {}
        flat = np.fromiter((vocab.setdefault(w, len(vocab)) for toks in tokens for w in toks), dtype=np.int64,
                           count=int(self.lengths.sum()))
        text_of = np.repeat(np.arange(self.n_texts, dtype=np.int64), self.lengths)
        remaining = np.cumsum(self.lengths)[text_of] - np.arange(flat.size)  # tokens left in the text from here
        width = max(len(vocab), 1)
        self.orders: Dict[int, _Order] = {}
        ids, n_grams = flat, width
        for k in range(1, max_n + 1):
            at = np.flatnonzero(remaining >= k)  # positions where a k-gram starts
            if k > 1:
                uniq, inverse = np.unique(ids[at] * width + flat[at + k - 1], return_inverse=True)
                ids = np.full(flat.size, -1, dtype=np.int64)
                ids[at] = inverse.ravel()
                n_grams = max(int(uniq.size), 1)
            pair, count = np.unique(text_of[at] * n_grams + ids[at], return_counts=True)
            text = pair // n_grams
            self.orders[k] = _Order(text=text, gram=pair % n_grams, count=count, n_grams=n_grams,
                                    offsets=np.searchsorted(text, np.arange(self.n_texts + 1)))

    def _rows(self, k: int, idx) -> Tuple[np.ndarray, np.ndarray]:
        """Row numbers of the k-grams of texts ``idx``, and for each row its position in ``idx``."""
        o = self.orders[k]
        idx = np.asarray(idx, dtype=np.int64)
        starts, counts = o.offsets[idx], o.offsets[idx + 1] - o.offsets[idx]
        owner = np.repeat(np.arange(idx.size), counts)
        first = np.cumsum(counts) - counts
        return np.repeat(starts, counts) + np.arange(int(counts.sum())) - np.repeat(first, counts), owner

    def counts(self, idx, k: int) -> Tuple[int, int]:
        """(distinct k-grams, all k-grams) pooled over texts ``idx``; k-grams never cross a text boundary."""
        if not 1 <= k <= self.max_n:
            raise ValueError(f"k: {k} is out of range; accepted 1 <= k <= {self.max_n}")
        idx = np.asarray(idx, dtype=np.int64)
        grams = self.orders[k].gram[self._rows(k, idx)[0]]
        n_grams = self.orders[k].n_grams
        if grams.size * 8 < n_grams:  # few rows: sorting them beats a pass over every id
            unique = int(np.unique(grams).size)
        else:
            unique = int(np.count_nonzero(np.bincount(grams, minlength=n_grams)))
        return unique, int(np.clip(self.lengths[idx] - k + 1, 0, None).sum())

    def distinct_n(self, idx, k: int) -> float:
        """``measure.metrics.lexical.distinct_n`` of texts ``idx``."""
        unique, total = self.counts(idx, k)
        return unique / total if total else float("nan")

    def ead_averaged(self, idx, n_max: int = 5, vocab_size: int = GPT2_VOCAB_SIZE) -> float:
        """``measure.metrics.lexical.ead_averaged`` of texts ``idx`` (mean of EAD_k over k = 1..n_max)."""
        values = [ead_from_counts(*self.counts(idx, k), k, vocab_size) for k in range(1, n_max + 1)]
        values = [v for v in values if not np.isnan(v)]
        return float(np.mean(values)) if values else float("nan")

    def self_bleu_per_text(self, hyp_idx, ref_idx, max_n: int = 4, epsilon: float = 0.1) -> np.ndarray:
        """BLEU-``max_n`` of each text of ``hyp_idx`` against the texts of ``ref_idx`` other than itself:
        ``measure.metrics.lexical.self_bleu_per_text`` with the references given (equal to it when
        ``ref_idx`` is the whole set). NaN for a text with fewer than ``max_n`` tokens."""
        if not 1 <= max_n <= self.max_n:
            raise ValueError(f"max_n: {max_n} is out of range; accepted 1 <= max_n <= {self.max_n}")
        hyp_idx, ref_idx = np.asarray(hyp_idx, dtype=np.int64), np.asarray(ref_idx, dtype=np.int64)
        in_refs = np.isin(hyp_idx, ref_idx)
        if ref_idx.size - int(in_refs.max(initial=0)) < 1:
            raise ValueError("self-BLEU needs at least one reference other than the text itself")
        c = self.lengths[hyp_idx].astype(np.float64)
        log_p = np.zeros(hyp_idx.size)
        no_unigram_match = np.zeros(hyp_idx.size, dtype=bool)
        for k in range(1, max_n + 1):
            matched = self._matched(k, hyp_idx, ref_idx)
            if k == 1:
                no_unigram_match = matched == 0
            total = np.maximum(c - k + 1, 1)
            log_p += np.log(np.where(matched > 0, matched, epsilon) / total) / max_n
        r = self._closest_reference_length(c, ref_idx, in_refs)
        brevity = np.where(c > r, 1.0, np.exp(1 - r / np.maximum(c, 1)))
        scores = np.where(no_unigram_match, 0.0, brevity * np.exp(log_p))
        return np.where(c < max_n, np.nan, scores)

    def _matched(self, k: int, hyp_idx: np.ndarray, ref_idx: np.ndarray) -> np.ndarray:
        """Per hypothesis: sum over its k-grams of min(its count, the largest count in another reference)."""
        o = self.orders[k]
        rows, _ = self._rows(k, ref_idx)
        gram, count, text = o.gram[rows], o.count[rows], o.text[rows]
        top_count = int(count.max(initial=0)) + 1
        order = np.argsort(gram * top_count + (top_count - 1 - count), kind="stable")  # by gram, largest first
        gram, count, text = gram[order], count[order], text[order]
        first = np.flatnonzero(np.r_[True, gram[1:] != gram[:-1]]) if gram.size else np.zeros(0, dtype=np.int64)
        sizes = np.diff(np.r_[first, gram.size])
        ref_gram, top, holder = gram[first], count[first], text[first]
        two = sizes >= 2
        second = np.where(two, count[np.minimum(first + 1, max(gram.size - 1, 0))], 0)
        rows, owner = self._rows(k, hyp_idx)
        h_gram, h_count, h_text = o.gram[rows], o.count[rows], o.text[rows]
        if ref_gram.size * 16 >= o.n_grams:  # many references: dense tables by gram id, one lookup per row
            at = np.full(o.n_grams, -1, dtype=np.int64)
            at[ref_gram] = np.arange(ref_gram.size)
            at = at[h_gram]
            found = at >= 0
        else:  # few references (chunks): binary search in their sorted grams
            at = np.minimum(np.searchsorted(ref_gram, h_gram), max(ref_gram.size - 1, 0))
            found = ref_gram[at] == h_gram if ref_gram.size else np.zeros(h_gram.size, dtype=bool)
        if not ref_gram.size:
            return np.zeros(hyp_idx.size)
        best_other = np.where(holder[at] == h_text, second[at], top[at])
        clipped = np.where(found, np.minimum(h_count, best_other), 0)
        return np.bincount(owner, weights=clipped, minlength=hyp_idx.size)

    def _closest_reference_length(self, c: np.ndarray, ref_idx: np.ndarray, in_refs: np.ndarray) -> np.ndarray:
        """The length closest to each hypothesis length among the other references (ties: the shorter)."""
        ref_len = np.sort(self.lengths[ref_idx]).astype(np.float64)
        lo, hi = np.searchsorted(ref_len, c, "left"), np.searchsorted(ref_len, c, "right")
        same = hi - lo - in_refs  # references of the same length, the text itself left out
        shorter = np.where(lo > 0, ref_len[np.maximum(lo - 1, 0)], -np.inf)
        longer = np.where(hi < ref_len.size, ref_len[np.minimum(hi, ref_len.size - 1)], np.inf)
        nearest = np.where(c - shorter <= longer - c, shorter, longer)
        return np.where(same >= 1, c, nearest)

"""Lexical (surface-form) diversity of a set of texts: distinct-n, expectation-adjusted distinct-n (EAD),
self-BLEU and gzip compression ratio. Pure functions: texts in, numbers out.

Tokenisation (``words``): lower-cased, split into runs of word characters and single punctuation marks, so
"Hopper's" is ``hopper ' s`` and "1906." is ``1906 .``. Every metric here uses it, so the numbers of two
models are comparable with each other (not with numbers computed under another tokenisation).

Set-level metrics (distinct-n, EAD, compression ratio) depend on how many texts are pooled: compare sets of
equal size.
"""
from __future__ import annotations

import gzip
import math
import re
from bisect import bisect_left, bisect_right
from collections import Counter
from typing import Dict, List, Sequence, Tuple

import numpy as np

TOKEN = re.compile(r"\w+|[^\w\s]")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"')\]\u201d\u2019])\s+")
BULLET = re.compile(r"^\s*(?:[-*\u2022]+|\d+[.)])\s+")
GPT2_VOCAB_SIZE = 50257  # the V Kirk et al. (2024) use in EAD; see ``ead``


def words(text: str) -> List[str]:
    """The tokens every lexical metric counts: lower-cased word runs and single punctuation marks."""
    return TOKEN.findall(text.lower())


def sentences(text: str) -> List[str]:
    """Split ``text`` into sentences: lines first (a leading bullet or "1." dropped), then after . ! ? (and a
    closing quote or bracket) followed by white space; empty pieces dropped. Simple on purpose (no list of
    abbreviations): "Dr. Smith" splits in two, which is rare in reviews and harmless for clustering."""
    out = []
    for line in text.splitlines():
        for piece in SENTENCE_END.split(BULLET.sub("", line)):
            if piece.strip():
                out.append(piece.strip())
    return out


def ngrams(tokens: Sequence[str], n: int) -> List[Tuple[str, ...]]:
    """The contiguous n-grams of one token sequence (none when it is shorter than n)."""
    if n < 1:
        raise ValueError(f"n: {n} is out of range; accepted n >= 1")
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def _pooled_ngram_counts(texts: Sequence[str], n: int) -> Tuple[int, int]:
    """(distinct n-grams, total n-grams) over all texts; n-grams never cross a text boundary."""
    if isinstance(texts, str):
        raise ValueError("texts must be a sequence of strings, not one string")
    seen, total = set(), 0
    for text in texts:
        grams = ngrams(words(text), n)
        seen.update(grams)
        total += len(grams)
    return len(seen), total


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct-n (Li et al. 2016), corpus level: unique n-grams / all n-grams, pooled over the set.

    In (0, 1]; 1 means no n-gram repeats anywhere in the set. NaN when the set has no n-gram at all.
    """
    unique, total = _pooled_ngram_counts(texts, n)
    return unique / total if total else float("nan")


def ead(texts: Sequence[str], n: int, vocab_size: int = GPT2_VOCAB_SIZE) -> float:
    """Expectation-adjusted distinct n-grams (Liu et al. 2022, "Rethinking and Refining the Distinct
    Metric", ACL; used by Kirk et al. 2024, "Understanding the Effects of RLHF on LLM Generalisation and
    Diversity", ICLR):

        EAD = N / (V * (1 - ((V - 1) / V) ** C))

    with N the distinct n-grams and C all n-grams pooled over the set, and V the vocabulary size. The
    denominator is the expected number of distinct items in C uniform draws from V, which removes most of
    distinct-n's fall with length. Like Kirk et al.'s code, V is the same for every n (they use GPT-2's
    50,257); pass the tokenizer's size to follow Liu et al. NaN when the set has no n-gram.
    """
    if vocab_size < 2:
        raise ValueError(f"vocab_size: {vocab_size} is out of range; accepted vocab_size >= 2")
    unique, total = _pooled_ngram_counts(texts, n)
    if total == 0:
        return float("nan")
    expected = vocab_size * -math.expm1(total * math.log1p(-1.0 / vocab_size))  # V (1 - ((V-1)/V)^C), stable
    return unique / expected


def ead_averaged(texts: Sequence[str], n_max: int = 5, vocab_size: int = GPT2_VOCAB_SIZE) -> float:
    """Mean of ``ead`` over n = 1..n_max (Kirk et al. 2024 report n = 1..5); NaN orders are skipped."""
    values = [ead(texts, n, vocab_size) for n in range(1, n_max + 1)]
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def compression_ratio(texts: Sequence[str], separator: str = "\n") -> float:
    """Bytes of the texts joined by ``separator`` (UTF-8) / bytes after gzip (level 9, mtime 0), compressed
    once over the whole concatenation (Shaib et al. 2024). Higher = more repetition = less diverse.
    """
    if isinstance(texts, str):
        raise ValueError("texts must be a sequence of strings, not one string")
    raw = separator.join(texts).encode("utf-8")
    if not raw:
        raise ValueError("compression_ratio needs at least one non-empty text")
    return len(raw) / len(gzip.compress(raw, compresslevel=9, mtime=0))


class _ReferenceCounts:
    """For each n-gram, its two largest per-text counts and the text holding the largest, so the maximum
    count over all texts but one (BLEU's clipping against "all other texts") is O(1) per n-gram."""

    def __init__(self, per_text: List[Counter]):
        self.best: Dict[tuple, Tuple[int, int, int]] = {}  # gram -> (max count, its text, second max)
        for i, counts in enumerate(per_text):
            for gram, c in counts.items():
                top, who, second = self.best.get(gram, (0, -1, 0))
                if c > top:
                    self.best[gram] = (c, i, top)
                elif c > second:
                    self.best[gram] = (top, who, c)

    def max_excluding(self, gram: tuple, i: int) -> int:
        top, who, second = self.best.get(gram, (0, -1, 0))
        return second if who == i else top


def _closest_other_length(sorted_lengths: List[int], c: int) -> int:
    """Length closest to ``c`` among all texts but one of length ``c`` (the hypothesis); ties: the shorter."""
    lo, hi = bisect_left(sorted_lengths, c), bisect_right(sorted_lengths, c)
    if hi - lo >= 2:
        return c  # another text has the same length
    neighbours = [sorted_lengths[lo - 1]] if lo > 0 else []
    neighbours += [sorted_lengths[hi]] if hi < len(sorted_lengths) else []
    return min(neighbours, key=lambda r: (abs(r - c), r))


def self_bleu_per_text(texts: Sequence[str], max_n: int = 4, epsilon: float = 0.1) -> np.ndarray:
    """Self-BLEU of each text (Zhu et al. 2018, Texygen): BLEU-``max_n`` of text i against all other texts
    of the set as references. Higher = more like the rest of the set = less diverse.

    BLEU (Papineni et al. 2002) at sentence level, as nltk's ``sentence_bleu`` with ``method1`` smoothing:
    modified precision p_k = sum_g min(count_i(g), max_{j != i} count_j(g)) / max(1, #k-grams of text i) for
    k = 1..max_n, a zero numerator replaced by ``epsilon``; geometric mean with uniform weights; brevity
    penalty exp(1 - r / c) when the text's length c is below r, the other texts' length closest to c (ties:
    the shorter). A text with no unigram match (or no tokens) scores 0. Exact, in O(total n-grams).
    """
    if isinstance(texts, str):
        raise ValueError("texts must be a sequence of strings, not one string")
    if len(texts) < 2:
        raise ValueError(f"self-BLEU needs at least 2 texts; got {len(texts)}")
    if max_n < 1:
        raise ValueError(f"max_n: {max_n} is out of range; accepted max_n >= 1")
    tokens = [words(t) for t in texts]
    lengths = [len(t) for t in tokens]
    sorted_lengths = sorted(lengths)
    refs = {k: _ReferenceCounts([Counter(ngrams(t, k)) for t in tokens]) for k in range(1, max_n + 1)}
    scores = np.zeros(len(texts))
    for i, toks in enumerate(tokens):
        c = len(toks)
        log_p = 0.0
        for k in range(1, max_n + 1):
            counts = Counter(ngrams(toks, k))
            matched = sum(min(cnt, refs[k].max_excluding(g, i)) for g, cnt in counts.items())
            if k == 1 and matched == 0:
                log_p = None
                break
            log_p += math.log((matched or epsilon) / max(1, sum(counts.values()))) / max_n
        if log_p is None:
            continue  # score 0
        r = _closest_other_length(sorted_lengths, c)
        brevity = 1.0 if c > r else math.exp(1 - r / c)
        scores[i] = brevity * math.exp(log_p)
    return scores


def self_bleu(texts: Sequence[str], max_n: int = 4) -> float:
    """Mean self-BLEU over the set (see ``self_bleu_per_text``)."""
    return float(self_bleu_per_text(texts, max_n).mean())

"""Lexical (surface-form) diversity of a set of texts: distinct-n, expectation-adjusted distinct-n (EAD),
self-BLEU and gzip compression ratio. Pure functions: texts in, numbers out.

Tokenisation (``words``): lower-cased, split into runs of word characters and single punctuation marks, so
"Hopper's" is ``hopper ' s`` and "1906." is ``1906 .``. Every metric here uses it, so the numbers of two
models are comparable with each other (not with numbers computed under another tokenisation).

Set-level metrics (distinct-n, EAD, self-BLEU, compression ratio) depend on how many texts are pooled and on
how long they are: compare sets of equal size (``measure.experiments.diversity`` does, and also on texts cut to
a common number of tokens, ``truncate_to_tokens``). ``measure.metrics.ngram_index`` computes the same counts for
any subset of a fixed pool of texts, vectorised; the functions here are the plain definitions it is tested on.
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


def truncate_to_tokens(text: str, n_tokens: int) -> str:
    """``text`` cut right after its ``n_tokens``-th token (the tokens of ``words``), original case and spacing
    kept, so ``words(truncate_to_tokens(t, L)) == words(t)[:L]``; a text with fewer tokens is returned whole."""
    if n_tokens < 1:
        raise ValueError(f"n_tokens: {n_tokens} is out of range; accepted n_tokens >= 1")
    for i, match in enumerate(TOKEN.finditer(text), start=1):
        if i == n_tokens:
            return text[:match.end()]
    return text


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

        EAD_n = N / (V_n * (1 - ((V_n - 1) / V_n) ** C)),   V_n = V ** n

    with N the distinct n-grams and C all n-grams pooled over the set. The denominator is the expected
    number of distinct items in C uniform draws from the V_n possible n-grams (Liu et al. define it for
    tokens, n = 1; an n-gram lives in a space of V ** n).

    Why V ** n and not V for every n (as Kirk et al.'s code does): with one V, the denominator of an order
    n >= 2 saturates at V once C exceeds a few V, so EAD_n becomes N / V, a count that grows with the amount
    of text without bound (it passes 1). A set of 805 long answers is in that regime and a chunk of 20 is
    not (C << V, where EAD_n is about distinct-n), so the same function ranked two sets one way on the whole
    sets and the other way on chunks. With V ** n the orders n >= 2 stay in the C << V_n regime (EAD_n is
    distinct-n with a small correction); order 1 still saturates near C ~ V, so EAD, like distinct-n, is
    compared only at equal n and equal length (``measure.experiments.diversity``). ``vocab_size`` is V (the
    tokenizer's size to follow Liu et al.; Kirk et al. use GPT-2's 50,257). NaN when the set has no n-gram.
    """
    if vocab_size < 2:
        raise ValueError(f"vocab_size: {vocab_size} is out of range; accepted vocab_size >= 2")
    unique, total = _pooled_ngram_counts(texts, n)
    return ead_from_counts(unique, total, n, vocab_size)


def ead_from_counts(unique: int, total: int, n: int, vocab_size: int = GPT2_VOCAB_SIZE) -> float:
    """``ead`` from the counts of a set: ``unique`` distinct n-grams among ``total`` (NaN when total is 0)."""
    if total == 0:
        return float("nan")
    space = float(vocab_size) ** n
    expected = space * -math.expm1(total * math.log1p(-1.0 / space))  # V_n (1 - ((V_n - 1) / V_n)^C), stable
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
    modified precision p_k = sum_g min(count_i(g), max_{j != i} count_j(g)) / #k-grams of text i for
    k = 1..max_n, a zero numerator replaced by ``epsilon``; geometric mean with uniform weights; brevity
    penalty exp(1 - r / c) when the text's length c is below r, the other texts' length closest to c (ties:
    the shorter). A text with no unigram match scores 0. A text with fewer than ``max_n`` tokens has no
    ``max_n``-gram, so its BLEU-``max_n`` is undefined: NaN (smoothing would invent the missing precisions:
    ten identical one-word texts would score 0.1 ** 0.75 = 0.18, which reads as diverse). Exact, in
    O(total n-grams).
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
        if c < max_n:
            scores[i] = np.nan
            continue
        log_p = 0.0
        for k in range(1, max_n + 1):
            counts = Counter(ngrams(toks, k))
            matched = sum(min(cnt, refs[k].max_excluding(g, i)) for g, cnt in counts.items())
            if k == 1 and matched == 0:
                log_p = None
                break
            log_p += math.log((matched or epsilon) / sum(counts.values())) / max_n
        if log_p is None:
            continue  # score 0
        r = _closest_other_length(sorted_lengths, c)
        brevity = 1.0 if c > r else math.exp(1 - r / c)
        scores[i] = brevity * math.exp(log_p)
    return scores


def self_bleu(texts: Sequence[str], max_n: int = 4) -> float:
    """Mean self-BLEU over the texts that have one (see ``self_bleu_per_text``); NaN when none has
    ``max_n`` tokens."""
    scores = self_bleu_per_text(texts, max_n)
    scores = scores[~np.isnan(scores)]
    return float(scores.mean()) if scores.size else float("nan")

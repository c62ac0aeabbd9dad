"""Lexical diversity metrics on hand-computed strings, and the fast self-BLEU against a plain loop."""
from __future__ import annotations

import gzip
import math
from collections import Counter

import numpy as np
import pytest

from measure.metrics.lexical import (compression_ratio, distinct_n, ead, ead_averaged, ngrams, self_bleu,
                                     self_bleu_per_text, words)


def test_words_lowercases_and_splits_punctuation():
    assert words("Grace Hopper's COBOL, 1906.") == ["grace", "hopper", "'", "s", "cobol", ",", "1906", "."]


def test_distinct_n_hand_computed():
    texts = ["the cat sat", "the cat ran"]
    # unigrams: the cat sat the cat ran -> 4 unique of 6
    assert distinct_n(texts, 1) == pytest.approx(4 / 6)
    # bigrams: (the cat) (cat sat) (the cat) (cat ran) -> 3 unique of 4
    assert distinct_n(texts, 2) == pytest.approx(3 / 4)
    # trigrams: two different ones; n-grams never cross the text boundary
    assert distinct_n(texts, 3) == pytest.approx(1.0)
    assert distinct_n(["a a a a"], 1) == pytest.approx(1 / 4)
    assert distinct_n(["a a a a"], 2) == pytest.approx(1 / 3)


def test_distinct_n_identical_texts_and_empty():
    assert distinct_n(["same words here"] * 10, 2) == pytest.approx(2 / 20)
    assert math.isnan(distinct_n(["one"], 2))
    with pytest.raises(ValueError):
        distinct_n(["x"], 0)
    with pytest.raises(ValueError):
        distinct_n("not a list", 1)


def test_ead_formula_hand_computed():
    texts = ["the cat sat", "the cat ran"]
    v = 10
    expected = 4 / (v * (1 - ((v - 1) / v) ** 6))
    assert ead(texts, 1, vocab_size=v) == pytest.approx(expected)
    # with a huge vocabulary the expected distinct count tends to C, so EAD tends to distinct-n
    assert ead(texts, 1, vocab_size=10**12) == pytest.approx(distinct_n(texts, 1), rel=1e-6)
    assert ead_averaged(texts, n_max=2, vocab_size=v) == pytest.approx(
        np.mean([ead(texts, 1, v), ead(texts, 2, v)]))
    with pytest.raises(ValueError):
        ead(texts, 1, vocab_size=1)


def test_ead_less_length_biased_than_distinct():
    # uniform random words: distinct-1 falls with length, EAD stays near 1
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(1000)]
    short = [" ".join(rng.choice(vocab, 50))]
    long = [" ".join(rng.choice(vocab, 3000))]
    assert distinct_n(long, 1) < 0.7 * distinct_n(short, 1)
    assert ead(long, 1, 1000) == pytest.approx(1.0, abs=0.05)
    assert ead(short, 1, 1000) == pytest.approx(1.0, abs=0.05)


def test_compression_ratio_compressed_once_over_the_concatenation():
    texts = ["ab", "cd"]
    raw = b"ab\ncd"
    assert compression_ratio(texts) == pytest.approx(len(raw) / len(gzip.compress(raw, 9, mtime=0)))
    repeated = ["Grace Hopper was an American computer scientist."] * 50
    varied = [f"text number {i} says {i * 7919 % 1000} things about {i ** 3}" for i in range(50)]
    assert compression_ratio(repeated) > 3 * compression_ratio(varied)
    with pytest.raises(ValueError):
        compression_ratio([""])


def _plain_sentence_bleu(hyp, refs, max_n=4, eps=0.1):
    """nltk-style sentence BLEU with method1 smoothing, written as a plain loop over references."""
    log_p = 0.0
    for k in range(1, max_n + 1):
        counts = Counter(ngrams(hyp, k))
        max_ref = Counter()
        for ref in refs:
            for g, c in Counter(ngrams(ref, k)).items():
                max_ref[g] = max(max_ref[g], c)
        matched = sum(min(c, max_ref[g]) for g, c in counts.items())
        if k == 1 and matched == 0:
            return 0.0
        log_p += math.log((matched or eps) / max(1, sum(counts.values()))) / max_n
    c = len(hyp)
    r = min((len(ref) for ref in refs), key=lambda L: (abs(L - c), L))
    bp = 1.0 if c > r else math.exp(1 - r / c)
    return bp * math.exp(log_p)


def test_self_bleu_equals_plain_loop():
    rng = np.random.default_rng(1)
    vocab = ["the", "cat", "sat", "on", "mat", "dog", "ran", "far", "a", "big"]
    texts = [" ".join(rng.choice(vocab, rng.integers(1, 12))) for _ in range(25)] + ["", "zebra"]
    tokens = [words(t) for t in texts]
    plain = [_plain_sentence_bleu(tokens[i], tokens[:i] + tokens[i + 1:]) for i in range(len(texts))]
    np.testing.assert_allclose(self_bleu_per_text(texts), plain, rtol=1e-12, atol=1e-12)


def test_self_bleu_known_answers():
    assert self_bleu(["a b c d e"] * 3) == pytest.approx(1.0)
    assert self_bleu(["a b c d", "e f g h"]) == 0.0  # no shared unigram
    with pytest.raises(ValueError):
        self_bleu(["only one"])

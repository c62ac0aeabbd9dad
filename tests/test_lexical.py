"""Lexical diversity metrics on hand-computed strings, and the fast self-BLEU against a plain loop."""
from __future__ import annotations

import gzip
import math
from collections import Counter

import numpy as np
import pytest

from measure.metrics.lexical import (compression_ratio, distinct_n, ead, ead_averaged, ngrams, self_bleu,
                                     self_bleu_per_text, truncate_to_tokens, words)
from measure.metrics.ngram_index import NgramIndex


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
    """nltk-style sentence BLEU with method1 smoothing, written as a plain loop over references; NaN for a
    hypothesis with fewer than max_n tokens (it has no max_n-gram: BLEU-max_n is undefined)."""
    if len(hyp) < max_n:
        return float("nan")
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
    index = NgramIndex(texts, max_n=4)  # the vectorised path, all other texts as references
    every = np.arange(len(texts))
    np.testing.assert_allclose(index.self_bleu_per_text(every, every), plain, rtol=1e-12, atol=1e-12)
    refs = np.array([0, 3, 5, 8, 13, 21, 26])  # a reference sample: hypotheses in it leave themselves out
    sampled = [_plain_sentence_bleu(tokens[i], [tokens[j] for j in refs if j != i]) for i in range(len(texts))]
    np.testing.assert_allclose(index.self_bleu_per_text(every, refs), sampled, rtol=1e-12, atol=1e-12)


def test_self_bleu_known_answers():
    assert self_bleu(["a b c d e"] * 3) == pytest.approx(1.0)
    assert self_bleu(["a b c d", "e f g h"]) == 0.0  # no shared unigram
    with pytest.raises(ValueError):
        self_bleu(["only one"])


def test_bleu_4_of_texts_without_a_4_gram_is_nan_not_diverse():
    """Ten identical one-word answers: no 4-gram, so BLEU-4 is undefined (smoothing used to give 0.18)."""
    assert math.isnan(self_bleu(["Yes"] * 10))
    assert np.isnan(self_bleu_per_text(["a b c", "a b c d"])[0])
    assert self_bleu(["a b c", "a b c d", "a b c d"]) == pytest.approx(1.0)  # only the 4-token texts count


def test_ngram_index_counts_equal_the_plain_definitions():
    rng = np.random.default_rng(2)
    vocab = ["the", "cat", "sat", "on", "mat", "dog", "ran", ",", "."]
    texts = [" ".join(rng.choice(vocab, rng.integers(0, 15))) for _ in range(40)] + ["Zebra!"]
    index = NgramIndex(texts, max_n=5)
    for subset in (np.arange(len(texts)), np.array([1, 4, 9, 16, 25, 36, 40]), np.array([7])):
        chosen = [texts[i] for i in subset]
        for k in range(1, 6):
            plain = distinct_n(chosen, k)
            fast = index.distinct_n(subset, k)
            assert (math.isnan(plain) and math.isnan(fast)) or fast == pytest.approx(plain, rel=1e-12)
        assert index.ead_averaged(subset, 5, 1000) == pytest.approx(ead_averaged(chosen, 5, 1000), rel=1e-12)


def test_ead_orders_live_in_v_to_the_n():
    """An n-gram lives in a space of V ** n: EAD_n is about distinct-n whatever the pooled count C, instead of
    saturating at V and growing without bound (passing 1) as the amount of text grows."""
    rng = np.random.default_rng(3)
    vocab = [f"w{i}" for i in range(1000)]
    texts = [" ".join(rng.choice(vocab, 200)) for _ in range(500)]  # C = 99,500 bigrams: about 100 V
    unique, total = len({g for t in texts for g in ngrams(words(t), 2)}), 500 * 199
    one_v = unique / (1000 * (1 - (999 / 1000) ** total))  # one V for every order: saturated at V
    assert one_v > 50
    assert ead(texts, 2, vocab_size=1000) == pytest.approx(unique / (1e6 * (1 - (1 - 1e-6) ** total)), rel=1e-9)
    assert 0.95 < ead(texts, 2, vocab_size=1000) < 1.01  # uniform draws: EAD about 1, as Liu et al. intend
    half = texts[:20]  # and a chunk reads the same: the length adjustment no longer depends on the regime
    assert ead(half, 2, vocab_size=1000) == pytest.approx(ead(texts, 2, vocab_size=1000), abs=0.05)


def test_truncate_to_tokens_keeps_the_original_text():
    text = "Grace Hopper's COBOL, 1906. And more words here"
    assert truncate_to_tokens(text, 5) == "Grace Hopper's COBOL"
    for n in range(1, 12):
        assert words(truncate_to_tokens(text, n)) == words(text)[:n]
    assert truncate_to_tokens("two words", 10) == "two words"
    with pytest.raises(ValueError):
        truncate_to_tokens(text, 0)

"""Comparisons of sets of texts with known answers: one distribution at n = 400 and n = 100 shows no difference,
the same texts at two lengths give equal length-matched metrics, identical inputs give no difference, and
metrics with nothing to measure say so. Embeddings are given (random unit rows), so SBERT is not needed."""
from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from measure.config import ExperimentConfig
from measure.experiments.diversity import measure_sets
from measure.experiments.set_metrics import LEXICAL_METRICS, SET_METRICS

EXP = dict(name="semantic", n_bootstrap=200, chunk_size=20, k_max=4, n_permutations=200, equal_n_draws=5)
VOCAB = [f"w{i}" for i in range(300)]


def _texts(rng, n, vocab_size=300, lengths=(8, 30)):
    weights = 1.0 / np.arange(1, vocab_size + 1)  # Zipf: repeated words, as in real text
    return [" ".join(rng.choice(VOCAB[:vocab_size], rng.integers(*lengths), p=weights / weights.sum())) + "."
            for _ in range(n)]


def _embeddings(rng, n, d=16):
    X = rng.normal(size=(n, d)) + 1.0
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _measure(texts: dict, seed=0, **exp):
    rng = np.random.default_rng(seed + 100)
    embeddings = {label: _embeddings(rng, len(t)) for label, t in texts.items()}
    return measure_sets(texts, ExperimentConfig(**{**EXP, **exp}), seed=seed, embeddings=embeddings)[0]


def test_one_distribution_at_400_and_100_shows_no_difference():
    # seed 1: under seed 0 the 100 texts come out 8% shorter by chance and raw distinct-2 differs at p ~ 0.001
    # (a 3.3-sd draw of the permutation null; seeds 1-5 sit at quantiles 0.06-0.67 of theirs)
    rng = np.random.default_rng(1)
    results = _measure({"big": _texts(rng, 400), "small": _texts(rng, 100)})
    models, comp = results["models"], results["comparison"]
    # the raw full-set values differ only because n differs: distinct-2 over 400 texts is far lower
    assert models["small"]["distinct_2"] - models["big"]["distinct_2"] > 0.1
    # 1%: above the floor of a two-sided test with 200 permutations (2/201), so a real difference fails this test
    alpha = 0.01
    for metric in SET_METRICS:
        block = comp[metric]
        assert block["equal_n"]["n"] == [400, 100] and block["equal_n"]["n_matched"] == 100, metric
        assert block["permutation_p"] > alpha, (metric, block["permutation_p"])
        assert block["welch_p"] > alpha, (metric, block["welch_p"])  # chunks of 20 on both sides
        assert block["permutation_n"] == [400, 100]
    raw_gap = models["big"]["distinct_2"] - models["small"]["distinct_2"]
    assert abs(comp["distinct_2"]["equal_n"]["diff"]) < 0.3 * abs(raw_gap)  # at equal n the n effect is gone
    for metric in LEXICAL_METRICS:
        assert comp["length_matched"][metric]["permutation_p"] > alpha, metric


def test_two_distributions_are_told_apart():
    """The positive control of the test above: a smaller vocabulary is less diverse at any n."""
    rng = np.random.default_rng(7)
    comp = _measure({"wide": _texts(rng, 400), "narrow": _texts(rng, 100, vocab_size=40)})["comparison"]
    for metric in ("distinct_1", "distinct_2", "ead_1to5"):
        assert comp[metric]["equal_n"]["diff"] > 0.05
        assert comp[metric]["permutation_p"] <= 2 / 201 + 1e-12 and comp[metric]["welch_p"] < 1e-3  # the floor
    assert comp["self_bleu_4"]["equal_n"]["diff"] < 0 and comp["self_bleu_4"]["permutation_p"] < 0.01


def test_the_same_texts_at_two_lengths_give_equal_length_matched_metrics():
    rng = np.random.default_rng(2)
    short = [" ".join(rng.choice(VOCAB, 25)) for _ in range(60)]  # 25 tokens each
    long = [t + " and then " + " ".join(rng.choice(VOCAB[:20], int(rng.integers(10, 40)))) for t in short]
    results = _measure({"short": short, "long": long})
    a, b = results["models"]["short"]["length_matched"], results["models"]["long"]["length_matched"]
    assert a["tokens"] == b["tokens"] == 25 and a["n_texts"] == b["n_texts"] == 60
    for metric in LEXICAL_METRICS:
        assert a[metric] == pytest.approx(b[metric], rel=1e-12), metric
        block = results["comparison"]["length_matched"][metric]
        assert block["equal_n"]["diff"] == 0.0 and block["permutation_p"] == 1.0
    # whole texts: the long ones repeat a 20-word tail, and the lengths are flagged
    assert results["models"]["short"]["distinct_2"] > results["models"]["long"]["distinct_2"] + 0.1
    flag = results["comparison"]["mean_length"]
    assert flag["differ"] and flag["relative_difference"] > 0.2 and "length_matched" in flag["note"]


def test_length_control_cuts_to_the_given_length_and_counts_short_texts():
    rng = np.random.default_rng(3)
    texts = {"a": [" ".join(rng.choice(VOCAB, n)) for n in (5, 12, 20, 30, 40, 50)] * 3,
             "b": [" ".join(rng.choice(VOCAB, n)) for n in (15, 25, 35)] * 6}
    results = _measure(texts, length_control=20, chunk_size=4)
    a = results["models"]["a"]["length_matched"]
    assert a["tokens"] == 20 and a["n_texts"] == 18 and a["n_shorter"] == 6 and a["shorter_texts"] == "kept whole"
    assert a["mean_tokens"] == pytest.approx((5 + 12 + 4 * 20) / 6) and "length_control" in a["tokens_from"]
    dropped = _measure(texts, length_control=20, chunk_size=4, length_short_texts="drop")["models"]["a"]
    assert dropped["length_matched"]["n_texts"] == 12 and dropped["length_matched"]["mean_tokens"] == 20
    default = _measure(texts, chunk_size=4)["models"]["b"]["length_matched"]
    assert default["tokens"] == 25  # the shorter set's median (a: 25, b: 25)


def test_identical_inputs_give_no_difference():
    rng = np.random.default_rng(4)
    texts = _texts(rng, 60)
    results = _measure({"a": texts, "b": texts[::-1]})
    comp = results["comparison"]
    assert comp["no_difference"].startswith("identical inputs")
    for metric in SET_METRICS:
        assert comp[metric]["welch_p"] == 1.0 and comp[metric]["permutation_p"] == 1.0, metric
        assert comp[metric]["equal_n"]["diff"] == 0.0 and comp[metric]["mean_diff"] == 0.0
    for metric in LEXICAL_METRICS:
        assert comp["length_matched"][metric]["permutation_p"] == 1.0
    same = _measure({"a": ["Yes, it is a fine machine."] * 40, "b": ["Yes, it is a fine machine."] * 40})
    assert same["comparison"]["sbert_cosine"]["welch_p"] == 1.0  # once 0.0 from float noise


def test_nothing_to_measure_is_nan_with_a_reason(caplog):
    rng = np.random.default_rng(5)
    with caplog.at_level(logging.WARNING, logger="measure.experiments.diversity"):
        results = _measure({"emoji": ["\U0001F642\U0001F642"] * 10, "yes": ["Yes"] * 10,
                            "gaps": ["", "   ", "\n"] + _texts(rng, 10)}, chunk_size=5)
    emoji, yes, gaps = (results["models"][k] for k in ("emoji", "yes", "gaps"))
    assert math.isnan(emoji["tfidf_cosine"]["mean"])  # once 0.0, which reads as maximally diverse
    assert "empty TF-IDF vocabulary" in emoji["undefined"]["tfidf_cosine"]
    assert math.isnan(yes["self_bleu_4"])  # once 0.18
    assert "BLEU-4 needs a 4-gram" in yes["undefined"]["self_bleu_4"]
    assert math.isnan(yes["distinct_2"]) and "2-gram" in yes["undefined"]["distinct_2"]
    assert gaps["n_empty_excluded"] == 3 and gaps["n_texts"] == 10
    assert any("3 of 13 texts are empty" in r.getMessage() for r in caplog.records)
    comp = results["comparisons"]["emoji_vs_yes"]
    assert math.isnan(comp["self_bleu_4"]["permutation_p"]) or "skipped" in comp["self_bleu_4"]


def test_no_cluster_structure_reports_k_null():
    rng = np.random.default_rng(6)
    results = _measure({"a": _texts(rng, 60), "b": _texts(rng, 60)})
    clusters = results["models"]["a"]["clusters"]  # random embeddings: no structure
    assert clusters["k"] is None and clusters["k_fitted"] >= 2
    assert clusters["best_silhouette"] < 0.25 and "no cluster structure" in clusters["note"]
    assert results["comparison"]["clusters_k"]["a"]["no_structure_share"] == 1.0


def test_large_sets_embed_a_seeded_sample(monkeypatch):
    """SBERT is the floor of the cost: a set larger than experiment.sbert_max_texts embeds a seeded sample of that
    many texts for its SBERT measures; lexical measures keep every text."""
    from measure.experiments import diversity

    embedded = {}

    def fake_embed_sets(texts_by_label, batch_size=64, max_seq_length=None):
        embedded.update({label: len(t) for label, t in texts_by_label.items()})
        return {label: _embeddings(np.random.default_rng(0), len(t)) for label, t in texts_by_label.items()}

    monkeypatch.setattr(diversity, "embed_sets", fake_embed_sets)
    monkeypatch.setattr(diversity, "truncation_report", lambda texts, max_seq_length=None: {"share": 0.0})
    rng = np.random.default_rng(8)
    results, sets = measure_sets({"a": _texts(rng, 60), "b": _texts(rng, 25)},
                                 ExperimentConfig(**{**EXP, "sbert_max_texts": 30}))
    assert embedded == {"a": 30, "b": 25}
    a = results["models"]["a"]
    assert a["n_texts"] == 60 and a["sbert_n"] == 30 and "seeded sample of 30 of 60" in a["sbert_texts"]
    assert sum(a["clusters"]["sizes"]) == 30 and (sets["a"].clustering.labels == -1).sum() == 30
    comp = results["comparison"]
    assert comp["sbert_cosine"]["equal_n"]["n"] == [30, 25] and comp["distinct_2"]["equal_n"]["n"] == [60, 25]
    assert comp["clusters_k"]["n"] == [30, 25]

"""SBERT all-MiniLM-L6-v2 from the pip package: offline, 384-d unit vectors, loaded once per process."""
from __future__ import annotations


import numpy as np
import pytest

from measure.embeddings import SBERT_DIM, embed, load_sbert


@pytest.fixture(scope="module")
def sbert():
    return load_sbert("cpu")


def test_shape_and_unit_norm(sbert):
    X = embed(["Grace Hopper was a computer scientist.", "The coffee machine keeps my coffee warm."], sbert)
    assert X.shape == (2, SBERT_DIM) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)


def test_identical_texts_cosine_one_and_meaning_closer_than_topic(sbert):
    texts = ["Grace Hopper was a pioneer of computer programming.",
             "Grace Hopper was a pioneer of computer programming.",
             "Grace Hopper pioneered the programming of computers.",
             "This coffee machine connects to my smartwatch."]
    X = embed(texts, sbert, batch_size=2)
    assert float(X[0] @ X[1]) == pytest.approx(1.0, abs=1e-5)
    assert float(X[0] @ X[2]) > float(X[0] @ X[3]) + 0.3


def test_cached_model_and_edge_cases(sbert):
    assert load_sbert("cpu") is sbert
    assert embed([], sbert).shape == (0, SBERT_DIM)
    assert embed([""], sbert).shape == (1, SBERT_DIM)
    with pytest.raises(ValueError):
        embed("one string", sbert)
    with pytest.raises(ValueError):
        embed(["x"], sbert, batch_size=0)


def test_truncation_is_reported(sbert):
    from measure.embeddings import truncation_report

    long = " ".join(["coffee"] * 400)  # 400 word pieces: SBERT reads the first 256 ([CLS] and [SEP] included)
    report = truncation_report([long, "A short text."], sbert)
    assert report["share"] == 0.5 and report["n_truncated"] == 1 and report["n"] == 2
    assert report["max_seq_length"] == sbert.max_seq_length and report["max_word_pieces"] > 400
    assert truncation_report([], sbert)["share"] == 0.0

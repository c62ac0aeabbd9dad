"""Pairwise cosine statistics without n x n matrices equal the n x n computation; Vendi known answers."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from measure.metrics import similarity as sim
from measure.metrics.similarity import (cosine_matrix, pairwise_cosine_stats, point_mean_similarity,
                                        tfidf_vectors, vendi_score)


def _unit_rows(rng, n, d):
    X = rng.normal(size=(n, d)) + 0.5  # shifted so cosines are not all near 0
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _pairs_from_matrix(X):
    K = cosine_matrix(X)
    iu = np.triu_indices(K.shape[0], k=1)
    return K[iu], K


@pytest.mark.parametrize("n,d", [(50, 8), (7, 30), (2, 5)])  # d <= n (d x d route) and d > n (row blocks)
def test_mean_and_std_equal_n_by_n(n, d):
    X = _unit_rows(np.random.default_rng(n * d), n, d)
    pairs, K = _pairs_from_matrix(X)
    stats = pairwise_cosine_stats(X)
    assert stats["mean"] == pytest.approx(pairs.mean(), abs=1e-12)
    assert stats["std"] == pytest.approx(pairs.std(), abs=1e-7)  # sqrt of a difference: ~1e-8 floor
    assert stats["n_pairs"] == n * (n - 1) // 2
    np.testing.assert_allclose(point_mean_similarity(X), (K.sum(1) - 1) / (n - 1), atol=1e-12)


def test_row_blocks_route(monkeypatch):
    monkeypatch.setattr(sim, "BLOCK_ROWS", 3)
    X = _unit_rows(np.random.default_rng(3), 10, 40)
    pairs, _ = _pairs_from_matrix(X)
    assert pairwise_cosine_stats(X)["std"] == pytest.approx(pairs.std(), abs=1e-9)


def test_identical_texts_have_cosine_one():
    X = tfidf_vectors(["Grace Hopper was a rear admiral."] * 5)
    stats = pairwise_cosine_stats(X)
    assert stats["mean"] == pytest.approx(1.0)
    assert stats["std"] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(point_mean_similarity(X), 1.0)


def test_tfidf_sparse_matches_sklearn_cosine_with_an_empty_text():
    from sklearn.metrics.pairwise import cosine_similarity

    texts = ["the cat sat on the mat", "the dog sat on a log", "a cat and a dog", "", "!!", "mat log cat"]
    X = tfidf_vectors(texts)
    assert sp.issparse(X)
    K = cosine_similarity(X)
    iu = np.triu_indices(len(texts), k=1)
    stats = pairwise_cosine_stats(X)
    assert stats["mean"] == pytest.approx(K[iu].mean(), abs=1e-12)
    assert stats["std"] == pytest.approx(K[iu].std(), abs=1e-9)
    np.testing.assert_allclose(point_mean_similarity(X), (K.sum(1) - np.diag(K)) / (len(texts) - 1), atol=1e-12)


def test_texts_without_terms_give_zero_similarity():
    stats = pairwise_cosine_stats(tfidf_vectors(["!", "?", "a"]))
    assert stats["mean"] == 0.0 and stats["std"] == 0.0


def test_bad_rows_rejected():
    with pytest.raises(ValueError, match="L2-normalised"):
        pairwise_cosine_stats(np.ones((3, 2)))
    with pytest.raises(ValueError):
        pairwise_cosine_stats(np.ones((1, 2)) / np.sqrt(2))


def test_vendi_known_answers():
    assert vendi_score(np.tile([[0.6, 0.8]], (10, 1))) == pytest.approx(1.0)
    assert vendi_score(np.eye(5)) == pytest.approx(5.0)
    # two orthogonal groups of equal size: 2 effective items
    assert vendi_score(np.repeat(np.eye(2), 4, axis=0)) == pytest.approx(2.0)


def test_vendi_d_by_d_equals_n_by_n():
    X = _unit_rows(np.random.default_rng(5), 40, 6)  # n > d: the d x d route
    K = X @ X.T / 40
    eig = np.clip(np.linalg.eigvalsh(K), 0, None)
    eig = eig[eig > 1e-12]
    expected = np.exp(-np.sum(eig * np.log(eig)))
    assert vendi_score(X) == pytest.approx(expected, rel=1e-9)
    Y = _unit_rows(np.random.default_rng(6), 5, 20)  # n < d: the n x n route
    assert 1.0 < vendi_score(Y) <= 5.0

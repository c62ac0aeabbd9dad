"""Pairwise similarity of a set of texts (Experiment 2, section 3.2): cosine of TF-IDF vectors (Salton and
Buckley 1988) and of SBERT embeddings, plus the Vendi score (Friedman and Dieng 2023).

Every statistic over pairs is computed without an n x n matrix, so 100k texts fit in memory:
- mean over the pairs i < j from the sum s of the unit vectors: sum_{i != j} x_i.x_j = ||s||^2 - sum_i ||x_i||^2;
- std over the pairs i < j from the sum of squared cosines sum_{i,j} (x_i.x_j)^2 = ||X^T X||_F^2: a d x d
  Gram when d <= n (SBERT); for sparse rows (TF-IDF) X^T X in blocks of columns, which costs
  sum_i nnz(x_i)^2, linear in n for texts of bounded length (the row route, X X^T, costs sum over terms of
  their document frequency squared: quadratic in n, as every text shares "the"); dense rows with d > n over
  row blocks of X X^T (memory O(block * n));
- each point's mean similarity to the others (the colour of Figure 10): (x_i.s - ||x_i||^2) / (n - 1).

Vectors are rows. A zero row (a text with no TF-IDF term) has cosine 0 with everything, itself included,
as in ``sklearn.metrics.pairwise.cosine_similarity``; every other row must have unit norm.
"""
from __future__ import annotations

import math
from typing import Dict, Sequence

import numpy as np
import scipy.sparse as sp

BLOCK_ROWS = 2048  # rows of X X^T held at once when the d x d route does not apply (dense rows, d > n)
BLOCK_COLS = 2048  # columns of X^T X held at once for sparse rows


def _check_rows(X):
    """Row norms squared (each 0 or 1); raises ValueError on rows that are neither zero nor unit."""
    norms2 = np.asarray(X.multiply(X).sum(axis=1)).ravel() if sp.issparse(X) else np.einsum("ij,ij->i", X, X)
    bad = ~(np.isclose(norms2, 1.0, atol=1e-3) | (norms2 == 0))
    if bad.any():
        raise ValueError(f"rows must be L2-normalised (or zero); row {int(np.argmax(bad))} has squared norm "
                         f"{norms2[bad][0]:.4f}")
    return (norms2 > 0).astype(np.float64)


def _as_float64(X):
    if sp.issparse(X):
        return sp.csr_matrix(X, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n, d); got shape {X.shape}")
    return X


def _sum_squared_cosines(X) -> float:
    """sum_{i,j} (x_i . x_j)^2 = ||X^T X||_F^2 = ||X X^T||_F^2, never forming an n x n matrix."""
    n, d = X.shape
    if sp.issparse(X):
        Xt, Xc = X.T.tocsr(), X.tocsc()
        total = 0.0
        for start in range(0, d, BLOCK_COLS):
            block = Xt @ Xc[:, start:start + BLOCK_COLS]  # d x block, sparse
            total += float(np.sum(block.data * block.data))
        return total
    if d <= n:
        gram = X.T @ X  # d x d
        gram = gram.toarray() if sp.issparse(gram) else gram
        return float(np.sum(gram * gram))
    total = 0.0
    for start in range(0, n, BLOCK_ROWS):
        block = X[start:start + BLOCK_ROWS] @ X.T  # block x n
        block = block.toarray() if sp.issparse(block) else block
        total += float(np.sum(block * block))
    return total


def pairwise_cosine_stats(X) -> Dict[str, float]:
    """Mean and std (population std, ddof=0, over all n(n-1)/2 distinct pairs i < j) of the cosine similarity
    of the rows of X (dense or scipy sparse, rows unit or zero), plus ``n`` and ``n_pairs``.

    Needs n >= 2. O(n d) memory: no n x n matrix is formed. The std is the square root of
    E[c^2] - E[c]^2 in float64, so it is exact to about 1e-8 absolute (near 0 for identical texts).
    """
    X = _as_float64(X)
    mean = pairwise_cosine_mean(X)  # checks n >= 2 and the rows
    n = X.shape[0]
    n_ordered = n * (n - 1)
    mean_sq = (_sum_squared_cosines(X) - _check_rows(X).sum()) / n_ordered  # the diagonal holds 1 per nonzero row
    return {"mean": mean, "std": math.sqrt(max(mean_sq - mean * mean, 0.0)), "n": n, "n_pairs": n_ordered // 2}


def pairwise_cosine_mean(X) -> float:
    """Mean cosine similarity over the n(n-1)/2 distinct pairs of rows of X (rows unit or zero), O(n d):
    ``pairwise_cosine_stats(X)["mean"]`` without the std's Gram."""
    X = _as_float64(X)
    n = X.shape[0]
    if n < 2:
        raise ValueError(f"pairwise cosine needs at least 2 vectors; got {n}")
    nonzero = _check_rows(X)
    s = np.asarray(X.sum(axis=0)).ravel()
    return (float(s @ s) - nonzero.sum()) / (n * (n - 1))


def point_mean_similarity(X) -> np.ndarray:
    """Each row's mean cosine similarity to the n - 1 other rows (Figure 10's colour), in O(n d)."""
    X = _as_float64(X)
    n = X.shape[0]
    if n < 2:
        raise ValueError(f"point mean similarity needs at least 2 vectors; got {n}")
    nonzero = _check_rows(X)
    s = np.asarray(X.sum(axis=0)).ravel()
    return (np.asarray(X @ s).ravel() - nonzero) / (n - 1)


def tfidf_vectors(texts: Sequence[str]) -> sp.csr_matrix:
    """TF-IDF rows (sklearn ``TfidfVectorizer`` defaults: lower-case, words of 2+ characters, smooth idf,
    L2-normalised rows), fitted on ``texts`` alone, so a set's similarity does not depend on what it is
    compared with. A set without any term gives all-zero rows (cosine 0) instead of an error.
    """
    return tfidf_from_counts(term_counts(texts))


def term_counts(texts: Sequence[str]) -> sp.csr_matrix:
    """Term counts under ``TfidfVectorizer``'s analyzer (sklearn ``CountVectorizer`` defaults); (n, 1) zeros
    when no text has a term. TF-IDF of any subset of rows (``tfidf_from_counts``) equals ``tfidf_vectors`` of
    those texts alone: terms absent from the subset are zero columns, which change no row."""
    from sklearn.feature_extraction.text import CountVectorizer

    if isinstance(texts, str):
        raise ValueError("texts must be a sequence of strings, not one string")
    try:
        return sp.csr_matrix(CountVectorizer().fit_transform(list(texts)), dtype=np.float64)
    except ValueError:  # "empty vocabulary": no text has a term
        return sp.csr_matrix((len(texts), 1), dtype=np.float64)


def tfidf_from_counts(counts) -> sp.csr_matrix:
    """TF-IDF rows (smooth idf fitted on these rows, L2-normalised; zero rows stay zero) from term counts."""
    import sklearn
    from sklearn.feature_extraction.text import TfidfTransformer

    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):  # called per subset: no checks
        return sp.csr_matrix(TfidfTransformer().fit_transform(counts), dtype=np.float64)


def cosine_matrix(X) -> np.ndarray:
    """The full n x n cosine matrix (small n only: figures and tests); zero rows give 0."""
    X = _as_float64(X)
    X = X.toarray() if sp.issparse(X) else X
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    U = np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)
    return U @ U.T


def vendi_score(X) -> float:
    """Vendi score (Friedman and Dieng 2023) of unit rows X with the cosine kernel K = X X^T:
    exp(-sum_i l_i log l_i) over the eigenvalues l_i of K / n: the effective number of distinct items,
    1 for identical rows, n for orthogonal ones.

    For n > d the nonzero eigenvalues come from the d x d matrix X^T X / n (same nonzero spectrum as K / n).
    """
    X = _as_float64(X)
    X = X.toarray() if sp.issparse(X) else X
    n, d = X.shape
    if n < 1:
        raise ValueError("vendi_score needs at least one vector")
    norms2 = np.einsum("ij,ij->i", X, X)
    if not np.allclose(norms2, 1.0, atol=1e-3):
        raise ValueError(f"vendi_score needs unit rows (K_ii = 1); row norms squared span "
                         f"[{norms2.min():.4f}, {norms2.max():.4f}]")
    gram = (X.T @ X if n > d else X @ X.T) / n
    eig = np.clip(np.linalg.eigvalsh(gram), 0.0, None)
    eig = eig[eig > 1e-12]
    eig = eig / eig.sum()  # trace is 1 up to rounding
    return float(np.exp(-np.sum(eig * np.log(eig))))

"""Clusters of embeddings (Experiment 1's review sentences, Experiment 2's completions, section 5.1):
k-means with k chosen by silhouette, t-SNE maps, and the points nearest each centroid.

Criterion for k (the paper reports 14 and 6 clusters for Figure 9 and four for Figure 10 without saying how
it chose them): fit k-means (k-means++, ``n_init`` restarts, fixed seed) for every k in [k_min, k_max] and
keep the k with the largest mean silhouette coefficient (Rousseeuw 1987, Euclidean, which on unit vectors
ranks pairs as cosine does). Silhouette is undefined for k = 1, so k = 1 is decided before the search: when
all points are (near) identical (every point within ``identical_tol`` of their mean) there is one cluster.
The range is clipped to [2, min(k_max, n - 1, number of distinct points)]. Sets larger than
SILHOUETTE_SAMPLE choose k on a seeded sample of that many points (silhouette costs O(n^2), and a k-means sweep
over 19 values of k on every point is the slow part at 10,000 texts); the chosen k is then fitted on all points.

No cluster structure: k-means always returns k clusters, and the k with the best silhouette is only a
finding when that silhouette says the clusters are real. Below ``min_silhouette`` (MIN_SILHOUETTE = 0.25,
Kaufman and Rousseeuw 1990, "Finding Groups in Data", section 2.2: an average silhouette of 0.25 or less
means "no substantial structure has been found") the result says so: ``structure`` is False and
``reported_k`` is None, while the fitted partition is kept for figures and representatives. Sentence
embeddings of free text often sit at 0.02-0.1, where k = 16-19 would otherwise be reported as a finding.

t-SNE stays O(n log n) per iteration (Barnes-Hut above EXACT_TSNE_MAX points) but is the slowest step for
large sets, so ``tsne_sample`` maps a seeded sample of at most MAP_SAMPLE points (a figure shows no more).
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

log = logging.getLogger(__name__)
IDENTICAL_TOL = 1e-4  # points closer than this to their mean count as identical (k = 1, one t-SNE spot)
SILHOUETTE_SAMPLE = 2000  # larger sets choose k (k-means sweep + silhouette) on a seeded sample of this many
EXACT_TSNE_MAX = 200  # sets up to this size use exact t-SNE gradients (O(n^2)), larger ones Barnes-Hut
MIN_SILHOUETTE = 0.25  # below: "no substantial structure" (Kaufman and Rousseeuw 1990); k reported as None
MAP_SAMPLE = 1000  # t-SNE maps at most this many points of a set (a seeded sample)


@dataclass
class Clustering:
    """k-means result with the silhouette curve that chose k."""

    k: int  # chosen number of clusters
    labels: np.ndarray  # (n,) cluster of each point, 0..k-1 (-1: a point left out, e.g. a text not embedded)
    centroids: np.ndarray  # (k, d)
    silhouette: Dict[int, float] = field(default_factory=dict)  # k -> mean silhouette (empty when k = 1 forced)
    criterion: str = "max mean silhouette over k_min..k_max"
    structure: bool = True  # False: the best silhouette is below min_silhouette (the partition is not a finding)
    min_silhouette: float = MIN_SILHOUETTE

    def sizes(self) -> List[int]:
        return np.bincount(self.labels[self.labels >= 0], minlength=self.k).tolist()

    @property
    def best_silhouette(self) -> float | None:
        return self.silhouette.get(self.k)

    @property
    def reported_k(self) -> int | None:
        """k as a finding: None when there is no cluster structure."""
        return self.k if self.structure else None

    def note(self) -> str:
        if self.structure:
            return self.criterion
        return (f"no cluster structure: best mean silhouette {self.best_silhouette:.3f} (k = {self.k}) is below "
                f"{self.min_silhouette} (Kaufman and Rousseeuw 1990: no substantial structure)")


def _kmeans(X: np.ndarray, k: int, seed: int, n_init: int):
    from sklearn.cluster import KMeans

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning when points coincide
        return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(X)


def choose_k(X, k_min: int = 2, k_max: int = 20, seed: int = 0, n_init: int = 4,
             identical_tol: float = IDENTICAL_TOL, min_silhouette: float = MIN_SILHOUETTE) -> Clustering:
    """k-means with k chosen by the largest mean silhouette over [k_min, k_max]; ``structure`` False when that
    silhouette is below ``min_silhouette`` (see module docstring)."""
    from sklearn.metrics import silhouette_score

    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X must be a non-empty (n, d) array; got shape {X.shape}")
    if not 2 <= k_min <= k_max:
        raise ValueError(f"k range: [{k_min}, {k_max}] is out of range; accepted 2 <= k_min <= k_max")
    n = X.shape[0]
    center = X.mean(axis=0)
    if n < 3 or np.max(np.linalg.norm(X - center, axis=1)) < identical_tol:
        return Clustering(k=1, labels=np.zeros(n, dtype=int), centroids=center[None, :],
                          criterion="k = 1: fewer than 3 points or all within identical_tol of their mean")
    n_distinct = len(np.unique(np.round(X / identical_tol).astype(np.int64), axis=0))
    hi = min(k_max, n - 1, n_distinct)
    lo = min(k_min, hi)
    if hi < 2:
        return Clustering(k=1, labels=np.zeros(n, dtype=int), centroids=center[None, :],
                          criterion="k = 1: fewer than 2 distinct points")
    sweep = X  # silhouette is O(n^2): large sets choose k on a seeded sample, then fit that k on every point
    if n > SILHOUETTE_SAMPLE:
        sweep = X[np.sort(np.random.default_rng(seed).choice(n, SILHOUETTE_SAMPLE, replace=False))]
    curve, fits = {}, {}
    for k in range(lo, hi + 1):
        fits[k] = _kmeans(sweep, k, seed, n_init)
        if len(set(fits[k].labels_)) < 2:
            continue
        curve[k] = float(silhouette_score(sweep, fits[k].labels_))
    if not curve:
        return Clustering(k=1, labels=np.zeros(n, dtype=int), centroids=center[None, :],
                          criterion="k = 1: k-means found no two clusters")
    best = max(curve, key=lambda k: (curve[k], -k))  # ties: the smaller k
    log.debug("silhouette curve %s -> k = %d", curve, best)
    final = fits[best] if sweep is X else _kmeans(X, best, seed, n_init)
    where = "" if sweep is X else f" on a seeded sample of {SILHOUETTE_SAMPLE} points, then fitted on all {n}"
    return Clustering(k=best, labels=final.labels_.astype(int), centroids=final.cluster_centers_,
                      silhouette=curve, criterion=f"max mean silhouette over k = {lo}..{hi}{where}",
                      structure=curve[best] >= min_silhouette, min_silhouette=min_silhouette)


def nearest_to_centroids(X, labels, centroids, m: int = 1) -> List[List[int]]:
    """For each cluster, the indices of its ``m`` members nearest its centroid (nearest first).

    With m = 1 these are the cluster representatives (section 5.1); m = 3 gives Tables 2-3's samples.
    """
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    out = []
    for c in range(len(centroids)):
        members = np.flatnonzero(labels == c)
        dist = np.linalg.norm(X[members] - centroids[c], axis=1)
        out.append(members[np.argsort(dist, kind="stable")[:m]].tolist())
    return out


def nearest_cluster(X, centroids) -> np.ndarray:
    """Index of the nearest centroid (Euclidean) for each row of X."""
    X = np.asarray(X, dtype=np.float64)
    C = np.asarray(centroids, dtype=np.float64)
    d2 = (X * X).sum(1)[:, None] - 2 * X @ C.T + (C * C).sum(1)[None, :]
    return np.argmin(d2, axis=1)


def tsne_2d(X, perplexity: float = 30.0, seed: int = 0) -> np.ndarray:
    """t-SNE (van der Maaten and Hinton 2008) to 2-D, perplexity clipped to n - 1 for small sets
    (sklearn requires perplexity < n); PCA initialisation. One point, or identical points, map to the origin."""
    from sklearn.manifold import TSNE

    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if perplexity <= 0:
        raise ValueError(f"perplexity: {perplexity} is out of range; accepted perplexity > 0")
    if n == 0:
        return np.zeros((0, 2))
    if n == 1 or np.max(np.linalg.norm(X - X.mean(axis=0), axis=1)) < IDENTICAL_TOL:
        return np.zeros((n, 2))  # identical points: one spot (t-SNE's gradient is undefined there)
    p = min(float(perplexity), n - 1.0)
    init = "pca" if min(X.shape) >= 2 else "random"
    method = "exact" if n <= EXACT_TSNE_MAX else "barnes_hut"  # exact is faster (and exact) for small sets
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TSNE(n_components=2, perplexity=p, init=init, method=method, random_state=seed).fit_transform(X)


def tsne_sample(X, max_points: int = MAP_SAMPLE, perplexity: float = 30.0, seed: int = 0) -> np.ndarray:
    """``tsne_2d`` of a seeded sample of at most ``max_points`` rows: (n, 2), NaN for the rows not mapped."""
    X = np.asarray(X, dtype=np.float64)
    if max_points < 2:
        raise ValueError(f"max_points: {max_points} is out of range; accepted max_points >= 2")
    out = np.full((X.shape[0], 2), np.nan)
    idx = np.arange(X.shape[0])
    if X.shape[0] > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(X.shape[0], max_points, replace=False))
    out[idx] = tsne_2d(X[idx], perplexity, seed)
    return out

"""k by silhouette, k = 1 for identical points, representatives and t-SNE on small sets."""
from __future__ import annotations

import numpy as np
import pytest

from measure.metrics.clusters import choose_k, nearest_cluster, nearest_to_centroids, tsne_2d


def _blobs(rng, centers, per=20, scale=0.05):
    return np.concatenate([c + scale * rng.normal(size=(per, len(c))) for c in centers])


def test_two_separated_blobs_give_k_2():
    rng = np.random.default_rng(0)
    X = _blobs(rng, [np.array([5.0, 0, 0]), np.array([-5.0, 0, 0])])
    result = choose_k(X, k_min=2, k_max=6)
    assert result.k == 2
    assert set(result.silhouette) == {2, 3, 4, 5, 6}
    assert result.silhouette[2] == max(result.silhouette.values())
    assert sorted(result.sizes()) == [20, 20]
    assert len(set(result.labels[:20])) == 1 and len(set(result.labels[20:])) == 1


def test_four_blobs_give_k_4():
    rng = np.random.default_rng(1)
    X = _blobs(rng, [np.array(c, dtype=float) for c in ([4, 0], [-4, 0], [0, 4], [0, -4])])
    assert choose_k(X, 2, 8).k == 4


def test_identical_points_form_one_cluster():
    X = np.tile([[0.6, 0.8, 0.0]], (12, 1))
    result = choose_k(X)
    assert result.k == 1
    assert result.silhouette == {}
    assert (result.labels == 0).all()
    assert nearest_to_centroids(X, result.labels, result.centroids) == [[0]]


def test_range_clipped_to_distinct_points():
    X = np.repeat(np.array([[1.0, 0], [0, 1.0], [-1.0, 0]]), 5, axis=0)
    result = choose_k(X, 2, 10)
    assert result.k == 3
    assert max(result.silhouette) == 3  # never asked for more clusters than distinct points


def test_bad_range_rejected():
    with pytest.raises(ValueError):
        choose_k(np.zeros((5, 2)), k_min=1)


def test_representatives_are_nearest_to_centroids():
    X = np.array([[0.0, 0], [0.1, 0], [1.0, 0], [10, 0], [10.2, 0]])
    labels = np.array([0, 0, 0, 1, 1])
    centroids = np.array([[0.1, 0], [10.1, 0]])
    assert nearest_to_centroids(X, labels, centroids, m=2) == [[1, 0], [3, 4]]
    np.testing.assert_array_equal(nearest_cluster([[9.0, 0], [0.5, 0]], centroids), [1, 0])


@pytest.mark.parametrize("n", [1, 2, 5, 40])
def test_tsne_shapes_and_perplexity_clip(n):
    X = np.random.default_rng(n).normal(size=(n, 8))
    Y = tsne_2d(X, perplexity=30, seed=0)
    assert Y.shape == (n, 2)
    assert np.isfinite(Y).all()


def test_tsne_of_identical_points_is_one_spot():
    Y = tsne_2d(np.tile([[0.6, 0.8, 0.0]], (10, 1)))
    assert Y.shape == (10, 2) and np.allclose(Y, 0)


def test_no_cluster_structure_gives_k_none():
    """Points from one Gaussian in 32-d: k-means still returns k clusters, but the best silhouette is far below
    0.25 (Kaufman and Rousseeuw: no substantial structure), so k is not reported as a finding."""
    X = np.random.default_rng(7).normal(size=(120, 32))
    result = choose_k(X, 2, 8)
    assert not result.structure and result.reported_k is None
    assert result.best_silhouette < 0.25 and result.k >= 2  # the fit is kept (figures, representatives)
    assert "no cluster structure" in result.note()
    blobs = _blobs(np.random.default_rng(0), [np.array([5.0, 0, 0]), np.array([-5.0, 0, 0])])
    assert choose_k(blobs, 2, 6).reported_k == 2 and choose_k(X, 2, 8, min_silhouette=-1).reported_k is not None


def test_tsne_sample_maps_at_most_max_points():
    from measure.metrics.clusters import tsne_sample

    X = np.random.default_rng(8).normal(size=(60, 8))
    Y = tsne_sample(X, max_points=20, perplexity=5)
    assert Y.shape == (60, 2) and np.isfinite(Y[:, 0]).sum() == 20

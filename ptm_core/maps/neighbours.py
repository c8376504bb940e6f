"""Nearest neighbours in the full feature space, and how much two backbones agree on them."""
from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from ptm_core.base.errors import PTMError


def _check_k(n: int, k: int) -> None:
    if k < 1:
        raise PTMError("k must be at least 1.")
    if k > n - 1:
        raise PTMError(f"Asked for {k} neighbours but there are only {n - 1} other images.")


def nearest_neighbours(features: np.ndarray, index: int, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The k images most cosine-similar to image `index` (itself excluded), most similar first.

    Returns (indices, similarities), each of length k; similarity = 1 - cosine distance.
    """
    n = len(features)
    _check_k(n, k)
    if not 0 <= index < n:
        raise PTMError(f"Image index {index} is out of range (0-{n - 1}).")
    # One extra neighbour so the query can be dropped even when it ties with an exact duplicate.
    knn = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(features)
    distances, indices = knn.kneighbors(features[index:index + 1])
    keep = indices[0] != index
    indices, distances = indices[0][keep][:k], distances[0][keep][:k]
    return indices, (1.0 - distances).astype(np.float32)


def knn_sets(features: np.ndarray, k: int, metric: str = "cosine") -> np.ndarray:
    """N x k indices of each point's k nearest neighbours, itself excluded: cosine for features, euclidean for a
    map's coordinates (what the eye sees)."""
    _check_k(len(features), k)
    # kneighbors() without X leaves every point out of its own neighbour list.
    return NearestNeighbors(n_neighbors=k, metric=metric).fit(features).kneighbors(return_distance=False)


def neighbour_agreement(features_a: np.ndarray, features_b: np.ndarray, k: int = 10) -> np.ndarray:
    """Per-image Jaccard overlap (0-1) of its k-NN sets in two feature spaces of the same images."""
    if len(features_a) != len(features_b):
        raise PTMError(f"The two feature sets cover different images ({len(features_a)} vs {len(features_b)}).")
    return sets_agreement(knn_sets(features_a, k), knn_sets(features_b, k))


def sets_agreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Jaccard overlap of two N x k neighbour-index arrays (each row free of repeats)."""
    k = a.shape[1]
    # Sorted, each row of [a | b] has a repeated value exactly where both sets share a neighbour.
    both = np.sort(np.concatenate([a, b], axis=1), axis=1)
    shared = np.count_nonzero(both[:, 1:] == both[:, :-1], axis=1)
    return (shared / (2 * k - shared)).astype(np.float32)


"""Numeric helpers the tests share: synthetic blobs with known classes, and row-wise cosines."""
from __future__ import annotations

import numpy as np


def gaussian_blobs(n: int = 300, centres: int = 3, dim: int = 8, spread: float = 1.0, seed: int = 0,
          shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """`n` float32 points around `centres` Gaussian centres (sklearn's make_blobs) and their int64 labels.

    `shift` moves every point off the origin, so that cosine measures (k-NN, maps) see the blobs too."""
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=n, centers=centres, n_features=dim, cluster_std=spread, random_state=seed)
    return (X + shift).astype(np.float32), y.astype(np.int64)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of `a` with the same row of `b`."""
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

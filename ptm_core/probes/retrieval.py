"""Retrieval metrics on the cosine k-NN graph: precision@1, R-precision and MAP@R.

Definitions of Musgrave, Belongie & Lim, "A Metric Learning Reality Check" (ECCV 2020), section 3.2, leave-one-out
(each image queries all the others, itself excluded):
- R: the number of other images of the query's class; capped at `max_r` (as pytorch-metric-learning's
  AccuracyCalculator caps it at the neighbours it retrieves, k).
- precision@1: whether the nearest other image has the query's class.
- R-precision: the share of the query's class among its R nearest neighbours.
- MAP@R: (1/R) sum_{i=1..R} P(i), where P(i) is the precision among the first i neighbours if the i-th has the
  query's class and 0 if not; unlike R-precision it rewards the right images coming first.
Each is the mean over queries. A query alone in its class (R = 0) has nothing to retrieve and is left out
(counted in `n_excluded`).

Frozen features were made without these labels, so every image can be a query (Musgrave et al. query the test set
against itself for the same reason). Neighbours come from sklearn's NearestNeighbors (cosine, on L2-normalised
features, brute force), `chunk` queries at a time, so only chunk x (max R + 1) neighbour indices are held at once.

Intervals: precision@1 is a proportion, so Wilson's (base.stats.accuracy_interval); R-precision and MAP@R are means
over queries, so Student's t-interval of the mean (base.stats.mean_interval). Both treat queries as independent,
which leave-one-out queries sharing one gallery are not quite: read them as a lower bound on the uncertainty.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import normalize

from ptm_core.base.errors import PTMError
from ptm_core.base.stats import accuracy_interval, mean_interval

MAX_R = 1000  # neighbours retrieved per query at most; R is capped here (5,000 MNIST images: R is about 500)
CHUNK_CELLS = 20_000_000  # queries x neighbours held at once (int64 indices + float distances: about 320 MB)

CITATION = "Musgrave, Belongie & Lim, A Metric Learning Reality Check, ECCV 2020"
DEFINITIONS = {
    "precision_at_1": "the share of images whose nearest other image (cosine) has their class",
    "r_precision": "for each image with R other images of its class, the share of its class among its R nearest "
                   "neighbours; averaged over images",
    "map_at_r": "mean average precision at R: like R-precision, but each right neighbour counts the precision up to "
                "its rank, so right images ranked first score higher",
}


@dataclass
class RetrievalResult:
    precision_at_1: float
    r_precision: float
    map_at_r: float
    precision_at_1_ci95: tuple[float, float]
    r_precision_ci95: tuple[float, float]
    map_at_r_ci95: tuple[float, float]
    n_queries: int
    n_excluded: int  # queries alone in their class
    max_r: int  # the cap on R actually applied (min(max_r, largest class - 1))
    seconds: float

    def summary(self) -> dict:
        return {"precision_at_1": self.precision_at_1, "r_precision": self.r_precision, "map_at_r": self.map_at_r,
                "precision_at_1_ci95": list(self.precision_at_1_ci95), "r_precision_ci95": list(self.r_precision_ci95),
                "map_at_r_ci95": list(self.map_at_r_ci95), "retrieval_queries": self.n_queries,
                "retrieval_excluded": self.n_excluded, "retrieval_max_r": self.max_r}


def _check(features: np.ndarray, labels: np.ndarray) -> None:
    if features.ndim != 2 or len(features) != len(labels):
        raise PTMError(f"Retrieval metrics need one label per feature row ({len(labels)} labels, "
                       f"{len(features)} rows).")
    if len(features) < 2:
        raise PTMError("Retrieval metrics need at least 2 images.")
    if not np.isfinite(features).all():
        raise PTMError("The features hold NaN or infinite values.")


def _without_self(neighbours: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    # The query is usually its own first neighbour, but an exact duplicate can tie with it and come first: drop it
    # wherever it is (a stable sort moves it to the end), else the extra last neighbour.
    is_self = neighbours == queries[:, None]
    order = np.argsort(is_self, axis=1, kind="stable")
    return np.take_along_axis(neighbours, order, axis=1)[:, :k]


def per_query(neighbour_labels: np.ndarray, query_labels: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, ...]:
    """(precision@1, R-precision, average precision at R) per query, from its neighbours' labels (nearest first,
    itself excluded, at least max(r) columns) and its R (>= 1)."""
    k = neighbour_labels.shape[1]
    hits = neighbour_labels == query_labels[:, None]
    within = np.arange(k)[None, :] < r[:, None]
    hits_r = hits & within
    precision_at_i = np.cumsum(hits_r, axis=1) / np.arange(1, k + 1)[None, :]
    return (hits[:, 0].astype(np.float64), hits_r.sum(axis=1) / r,
            (precision_at_i * hits_r).sum(axis=1) / r)


def retrieval_metrics(features: np.ndarray, labels: np.ndarray, max_r: int = MAX_R,
                      chunk_cells: int = CHUNK_CELLS) -> RetrievalResult:
    """precision@1, R-precision and MAP@R of every image as a query against all the others (module docstring)."""
    started = time.perf_counter()
    features, labels = np.asarray(features), np.asarray(labels)
    _check(features, labels)
    if max_r < 1:
        raise PTMError(f"Retrieval needs max_r >= 1, got {max_r}.")
    _, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    r_all = np.minimum(counts[codes] - 1, max_r)
    k = int(min(max_r, counts.max() - 1, len(labels) - 1))
    queries = np.flatnonzero(r_all > 0)
    if k < 1 or not len(queries):
        raise PTMError("Retrieval metrics need a class with at least 2 images.")
    bank = normalize(np.asarray(features, dtype=np.float32))
    index = NearestNeighbors(n_neighbors=k + 1, metric="cosine", algorithm="brute").fit(bank)
    step = max(1, chunk_cells // (k + 1))
    parts = []
    for start in range(0, len(queries), step):
        rows = queries[start:start + step]
        neighbours = _without_self(index.kneighbors(bank[rows], return_distance=False), rows, k)
        parts.append(per_query(codes[neighbours], codes[rows], r_all[rows]))
    p1, rp, ap = (np.concatenate(values) for values in zip(*parts))
    n = len(queries)
    return RetrievalResult(float(p1.mean()), float(rp.mean()), float(ap.mean()), accuracy_interval(float(p1.mean()), n),
                           mean_interval(rp), mean_interval(ap), n, len(labels) - n, k, time.perf_counter() - started)


def retrieval_text(result: RetrievalResult) -> str:
    """One line for the CLI: the three metrics with their intervals, and what they were measured on."""
    parts = [f"{name} {value:.4f} ({low:.4f}-{high:.4f})" for name, value, (low, high) in (
        ("precision@1", result.precision_at_1, result.precision_at_1_ci95),
        ("R-precision", result.r_precision, result.r_precision_ci95), ("MAP@R", result.map_at_r, result.map_at_r_ci95))]
    return (f"retrieval: {', '.join(parts)}; each of {result.n_queries} images against the rest, R at most "
            f"{result.max_r} (95 % intervals; {CITATION})")

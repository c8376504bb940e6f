"""Weighted k-NN probe on frozen features, the DINO protocol: cosine similarity, votes weighted exp(sim / T)."""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import normalize

from ptm_core.base.configs import KNNConfig
from ptm_core.base import checks
from ptm_core.base.stats import accuracy_interval
from ptm_core.base.errors import PTMError
from ptm_core.probes.linear import split_indices
from ptm_core.probes.retrieval import RetrievalResult, retrieval_metrics


def _vote_weights(distances: np.ndarray, temperature: float) -> np.ndarray:
    # sklearn's cosine distance is 1 - cos; float64 keeps exp(1/0.07) ~ 1.6e6 exact enough for ties.
    return np.exp((1.0 - distances.astype(np.float64)) / temperature)


class KNNProbe(ClassifierMixin, BaseEstimator):
    """k nearest neighbours by cosine similarity, each voting with weight exp(sim / temperature).

    `fit` stores the L2-normalised training bank; k is capped at the bank size.
    """

    def __init__(self, k: int = 20, temperature: float = 0.07):
        self.k = k
        self.temperature = temperature

    def fit(self, X: np.ndarray, y: np.ndarray) -> "KNNProbe":
        if self.k < 1:
            raise PTMError(f"k-NN needs k >= 1 (got k={self.k}).")
        checks.number("k-NN temperature (--temperature)", self.temperature, 0, 100, lo_open=True)
        self.bank_ = normalize(np.asarray(X, dtype=np.float32))
        self.n_neighbors_ = min(self.k, len(self.bank_))
        self.knn_ = KNeighborsClassifier(
            n_neighbors=self.n_neighbors_, metric="cosine", algorithm="brute",
            weights=functools.partial(_vote_weights, temperature=self.temperature)).fit(self.bank_, y)
        self.classes_ = self.knn_.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.knn_.predict_proba(normalize(np.asarray(X, dtype=np.float32)))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


@dataclass
class KNNResult:
    test_accuracy: float
    k: int
    temperature: float
    n_train: int
    n_test: int
    seconds: float
    test_indices: np.ndarray
    predictions: np.ndarray
    probabilities: np.ndarray
    retrieval: RetrievalResult | None = None  # precision@1, R-precision, MAP@R over every image (probes.retrieval)

    @property
    def test_accuracy_ci95(self) -> tuple[float, float]:
        """Wilson's 95 % interval of `test_accuracy` on these n_test images."""
        return accuracy_interval(self.test_accuracy, self.n_test)

    def summary(self) -> dict:
        return {"method": "knn", "test_accuracy": self.test_accuracy,
                "test_accuracy_ci95": list(self.test_accuracy_ci95), "k": self.k, "temperature": self.temperature,
                "n_train": self.n_train, "n_test": self.n_test, "seconds": self.seconds,
                **(self.retrieval.summary() if self.retrieval is not None else {})}


def run_knn_probe(features: np.ndarray, labels: np.ndarray, config: KNNConfig = KNNConfig(),
                  retrieval: bool = False) -> KNNResult:
    """k-NN on the same seeded train/test split as `run_linear_probe` with ProbeConfig(seed=config.seed); with
    `retrieval`, also the retrieval metrics of every image against all the others (no split: probes.retrieval)."""
    started = time.perf_counter()
    train, test = split_indices(labels, config.test_size, config.seed)
    probe = KNNProbe(config.k, config.temperature).fit(features[train], labels[train])
    proba = probe.predict_proba(features[test])
    predictions = probe.classes_[np.argmax(proba, axis=1)]
    seconds = time.perf_counter() - started
    return KNNResult(float(np.mean(predictions == labels[test])), probe.n_neighbors_, config.temperature,
                     len(train), len(test), seconds, test, predictions, proba,
                     retrieval_metrics(features, labels) if retrieval else None)

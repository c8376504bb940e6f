"""A linear probe scored by cross-validation, for a handful of images (a class's own photos: 5 to 50 a class).

With so few images a held-out test split would leave a few test images and waste the rest, so every image is
scored once, by a probe that never saw it: leave-one-out up to LOO_MAX images, stratified k-fold above (each fold
keeps the classes' shares; Kohavi 1995 on the two). The out-of-fold predictions give the accuracy, its Wilson
interval (base/stats.accuracy_interval) and McNemar's exact test between two feature kinds on the very same images
(base/stats.paired_test): each image's prediction comes from a probe trained without it, whatever the kind.

The probe is scikit-learn's: standardised features, then LogisticRegression at its default C = 1 (no C is tuned:
choosing one on 30 images would need a cross-validation inside each fold, and the choice would be noise);
`cross_val_predict` gives the out-of-fold predictions and probabilities. No hand-written numerics.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import LeaveOneOut, StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ptm_core.base.errors import PTMError
from ptm_core.base.messages import M_, Message
from ptm_core.base.stats import PairedTest, accuracy_interval, paired_test

LOO_MAX = 60  # up to this many images, leave-one-out (at most 60 fits of a probe on 60 points: well under a second)
FOLDS = 5
PROBE_C = 1.0  # scikit-learn's default; see the module docstring for why it is not tuned here


@dataclass
class FewShotScore:
    """One feature kind's probe, scored out of fold: every image predicted by a probe trained without it."""

    scheme: Message  # "leave-one-out" or "stratified 5-fold", in words
    truth: np.ndarray
    predictions: np.ndarray  # out-of-fold predicted class index, one per image
    probabilities: np.ndarray  # n x classes, out of fold
    seconds: float

    @property
    def n(self) -> int:
        return len(self.truth)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predictions == self.truth))

    @property
    def ci95(self) -> tuple[float, float]:
        """Wilson's 95 % interval of the out-of-fold accuracy on these n images."""
        return accuracy_interval(self.accuracy, self.n)


def probe(seed: int = 0) -> Pipeline:
    """The probe each fold fits (and the one `fit_probe` trains on every image): standardise, then logistic
    regression. The solver (lbfgs) is deterministic; the seed is kept for the record and for solvers that shuffle."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=PROBE_C, max_iter=2000, random_state=seed))


def folds(labels: np.ndarray, seed: int = 0):
    """Leave-one-out for up to LOO_MAX images; else stratified k-fold, shuffled by `seed`, k = FOLDS or fewer
    when a class has fewer images than that."""
    if len(labels) <= LOO_MAX:
        return LeaveOneOut(), M_("leave-one-out")
    k = int(min(FOLDS, np.bincount(labels).min()))
    return StratifiedKFold(n_splits=k, shuffle=True, random_state=seed), M_("stratified {k}-fold", k=k)


def check_labels(features: np.ndarray, labels: np.ndarray, minimum: int = 2) -> None:
    counts = np.bincount(labels)
    if features.ndim != 2 or len(features) != len(labels) or len(counts) < 2 or counts.min() < minimum:
        raise PTMError(M_("Cross-validation needs at least 2 classes with {minimum} images each and one feature "
                          "row per image; got class sizes {sizes}.", minimum=minimum, sizes=counts.tolist()))


def cross_validated(features: np.ndarray, labels: np.ndarray, seed: int = 0) -> FewShotScore:
    """The probe's out-of-fold predictions and probabilities for every image (classes 0..k-1 in `labels`)."""
    labels = np.asarray(labels)
    check_labels(features, labels)
    started = time.perf_counter()
    splitter, scheme = folds(labels, seed)
    # One BLAS thread: each fit is a few dozen rows, where a thread pool's start-up and spinning cost more than the
    # arithmetic (measured on 2 busy cores: 0.3 s of CPU for 30 leave-one-out fits against 1.5-3 s with two threads).
    with threadpool_limits(1):
        probabilities = cross_val_predict(probe(seed), features, labels, cv=splitter, method="predict_proba")
    # predict_proba's columns are the classes in sorted order; every training fold holds every class (>= 2 each).
    return FewShotScore(scheme, labels, probabilities.argmax(axis=1), probabilities, time.perf_counter() - started)


def fit_probe(features: np.ndarray, labels: np.ndarray, seed: int = 0) -> Pipeline:
    """The probe trained on every image: what classifies a new one."""
    labels = np.asarray(labels)
    check_labels(features, labels)
    with threadpool_limits(1):
        return probe(seed).fit(features, labels)


def versus(scores: dict[str, FewShotScore], reference: str) -> dict[str, PairedTest]:
    """McNemar's exact test of `reference` (a) against each other kind (b), on the same images' out-of-fold
    predictions."""
    ref = scores[reference]
    return {kind: paired_test(ref.truth, ref.predictions, score.predictions)
            for kind, score in scores.items() if kind != reference}

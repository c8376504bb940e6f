"""Linear probe on frozen features: C chosen on a validation split carved from train."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ptm_core.runs.artifacts import artifact_dir, load_npz, save_npz
from ptm_core.base.configs import PROBE_CS, PROBE_SOLVERS, ProbeConfig, stable_hash
from ptm_core.base import checks
from ptm_core.base.stats import accuracy_interval
from ptm_core.base.errors import Cancelled, PTMError

SweepCallback = Callable[[int, int], None]  # (fits done, fits in all): the sweep's C values plus the refit
CancelFn = Callable[[], bool]
DEFAULT_CS = PROBE_CS
SOLVERS = PROBE_SOLVERS


def _pipeline(C: float, max_iter: int) -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))


def check_splittable(labels: np.ndarray, fraction: float, what: str) -> None:
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise PTMError(f"The {what} has a single class; a probe needs at least two.")
    n_held = int(np.ceil(fraction * len(labels)))
    if counts.min() < 2 or n_held < len(classes) or len(labels) - n_held < len(classes):
        raise PTMError(f"Too few images for a stratified {what} split: {len(labels)} images, "
                       f"smallest class has {counts.min()}; use more images (raise --limit).")


def split_indices(labels: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified train/test indices; the same for every method on the same data."""
    checks.seed("split seed (--seed)", seed)
    checks.number("test_size", test_size, 0, 1, lo_open=True)
    check_splittable(labels, test_size, "train/test")
    index = np.arange(len(labels))
    train, test = train_test_split(index, test_size=test_size, stratify=labels, random_state=seed)
    return np.sort(train), np.sort(test)


def sweep_message(done: int, total: int) -> str:
    """Progress text for a `LinearProbe.fit` callback."""
    return f"probe sweep {done}/{total - 1}" if done < total else "refit at the best C"


class LinearProbe(ClassifierMixin, BaseEstimator):
    """StandardScaler + LogisticRegression, C swept on a stratified validation split, then refit on all.

    solver "torch": every C at once as a batch of heads (ptm_core.probes.sweep), the refit warm-started
    from the sweep's head; "sklearn": one Pipeline per C, the reference the torch heads are tested against.
    Either way `pipeline_` is a fitted sklearn Pipeline (the fine-tune head is read from it).
    """

    def __init__(self, Cs=DEFAULT_CS, val_size: float = 0.2, max_iter: int = 1000, random_state: int = 0,
                 solver: str = "torch", device: str = "auto"):
        self.Cs = Cs
        self.val_size = val_size
        self.max_iter = max_iter
        self.random_state = random_state
        self.solver = solver
        self.device = device

    def fit(self, X: np.ndarray, y: np.ndarray, callback: SweepCallback | None = None,
            cancelled: CancelFn | None = None) -> "LinearProbe":
        """`callback(done, total)` runs after each fit (the sweep's, then the refit); `cancelled()` is polled before each."""
        if self.solver not in SOLVERS:
            raise PTMError(f"Unknown probe solver '{self.solver}'; use one of {', '.join(SOLVERS)}.")
        check_splittable(y, self.val_size, "train/validation")
        split = train_test_split(X, y, test_size=self.val_size, stratify=y, random_state=self.random_state)
        total = len(self.Cs) + 1
        if self.solver == "torch":
            from ptm_core.probes.sweep import sweep_and_refit

            self.val_scores_, self.best_C_, self.pipeline_, self.solver_ = sweep_and_refit(
                X, y, split, self.Cs, self.max_iter, self.device, callback, cancelled)
        else:
            self.val_scores_ = self._sklearn_sweep(split, callback, cancelled)
            self.best_C_ = float(self.Cs[int(np.argmax(self.val_scores_))])
            self.pipeline_ = _pipeline(self.best_C_, self.max_iter).fit(X, y)
            self.solver_ = f"sklearn lbfgs, {len(self.Cs)} C values"
            if callback is not None:
                callback(total, total)
        self.classes_ = self.pipeline_.classes_
        return self

    def _sklearn_sweep(self, split: list, callback: SweepCallback | None, cancelled: CancelFn | None) -> list[float]:
        X_fit, X_val, y_fit, y_val = split
        scores: list[float] = []
        for C in self.Cs:
            if cancelled is not None and cancelled():  # a half-swept probe has nothing worth keeping
                raise Cancelled()
            scores.append(_pipeline(C, self.max_iter).fit(X_fit, y_fit).score(X_val, y_val))
            if callback is not None:
                callback(len(scores), len(self.Cs) + 1)
        return scores

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.pipeline_.predict(X)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.pipeline_.predict_proba(X)


@dataclass
class ProbeResult:
    test_accuracy: float
    best_C: float
    val_curve: list[tuple[float, float]]
    n_train: int
    n_test: int
    seconds: float  # compute time of the fit that produced these numbers, also when read from the cache
    test_indices: np.ndarray
    predictions: np.ndarray
    probabilities: np.ndarray | None = None  # n_test x n_classes, for confident-mistake views
    # Every image, train included (in-sample there), for colouring maps: prediction and its probability.
    all_predictions: np.ndarray | None = None
    all_confidence: np.ndarray | None = None
    from_cache: bool = False
    solver: str = ""  # what fitted it, e.g. "torch L-BFGS, 9 C values (cpu)"; "" in caches written before

    def split(self, n: int) -> np.ndarray:
        """'train' or 'test' for each of the n images."""
        names = np.full(n, "train", dtype=object)
        names[self.test_indices] = "test"
        return names

    @property
    def test_accuracy_ci95(self) -> tuple[float, float]:
        """Wilson's 95 % interval of `test_accuracy` on these n_test images."""
        return accuracy_interval(self.test_accuracy, self.n_test)

    def summary(self) -> dict:
        return {"test_accuracy": self.test_accuracy, "test_accuracy_ci95": list(self.test_accuracy_ci95),
                "best_C": self.best_C, "n_train": self.n_train,
                "n_test": self.n_test, "seconds": self.seconds, "from_cache": self.from_cache, "solver": self.solver,
                "val_curve": [{"C": c, "val_accuracy": a} for c, a in self.val_curve]}


def run_linear_probe(features: np.ndarray, labels: np.ndarray, config: ProbeConfig = ProbeConfig(),
                     callback: SweepCallback | None = None, cancelled: CancelFn | None = None,
                     device: str = "auto") -> ProbeResult:
    """`device` runs the torch solver there ("auto": a GPU if there is one); it changes speed, not results."""
    started = time.perf_counter()
    train, test = split_indices(labels, config.test_size, config.seed)
    probe = LinearProbe(config.Cs, config.val_size, config.max_iter, config.seed, config.solver, device)
    probe.fit(features[train], labels[train], callback=callback, cancelled=cancelled)
    all_probabilities = probe.predict_proba(features)
    probabilities = all_probabilities[test]
    predictions = probe.classes_[np.argmax(probabilities, axis=1)]
    return ProbeResult(
        test_accuracy=float(np.mean(predictions == labels[test])),
        best_C=probe.best_C_,
        val_curve=list(zip(map(float, config.Cs), map(float, probe.val_scores_))),
        n_train=len(train), n_test=len(test), seconds=time.perf_counter() - started,
        test_indices=test, predictions=predictions, probabilities=probabilities,
        all_predictions=probe.classes_[np.argmax(all_probabilities, axis=1)],
        all_confidence=all_probabilities.max(axis=1).astype(np.float32), solver=probe.solver_,
    )


def cached_linear_probe(features: np.ndarray, labels: np.ndarray, feature_key: str, config: ProbeConfig = ProbeConfig(),
                        callback: SweepCallback | None = None, cancelled: CancelFn | None = None) -> ProbeResult:
    """`run_linear_probe`, read back from disk when these features were probed the same way before.

    A cached result keeps the `seconds` of the fit that produced it and has `from_cache` set.
    """
    path = artifact_dir("probes") / f"{stable_hash([feature_key, config.key()])}.npz"
    cached = load_npz(path)
    if cached is not None and "all_predictions" in cached[0]:  # older caches lack the all-image columns
        arrays, meta = cached
        return ProbeResult(meta["test_accuracy"], meta["best_C"], [tuple(p) for p in arrays["val_curve"].tolist()],
                           meta["n_train"], meta["n_test"], meta["seconds"], arrays["test_indices"], arrays["predictions"],
                           arrays.get("probabilities"), arrays["all_predictions"], arrays["all_confidence"],
                           from_cache=True, solver=meta.get("solver", ""))
    result = run_linear_probe(features, labels, config, callback, cancelled)
    meta = {k: v for k, v in result.summary().items() if k not in ("val_curve", "from_cache")}
    save_npz(path, meta=meta, val_curve=np.array(result.val_curve), test_indices=result.test_indices,
             predictions=result.predictions, probabilities=result.probabilities,
             all_predictions=result.all_predictions, all_confidence=result.all_confidence)
    return result


# Results views shared by every method (linear probe, k-NN, fine-tuning): all index the same test split.

def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Recall of each class 0..n_classes-1 (NaN for a class absent from y_true)."""
    matrix = confusion(y_true, y_pred, n_classes)
    support = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(matrix) / support, np.nan)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix, rows = true class, columns = predicted, over all classes even if unseen."""
    return confusion_matrix(y_true, y_pred, labels=np.arange(n_classes))


def confident_mistakes(y_true: np.ndarray, probabilities: np.ndarray, classes: np.ndarray | None = None,
                       top: int | None = 20) -> np.ndarray:
    """Positions (into the test split) of wrong predictions, most confident first.

    `probabilities` has one column per entry of `classes` (default 0..C-1); confidence is
    the predicted class's probability. Map positions to dataset indices with test_indices[pos].
    """
    classes = np.arange(probabilities.shape[1]) if classes is None else np.asarray(classes)
    predicted = classes[np.argmax(probabilities, axis=1)]
    wrong = np.flatnonzero(predicted != np.asarray(y_true))
    order = wrong[np.argsort(-probabilities[wrong].max(axis=1), kind="stable")]
    return order if top is None else order[:top]

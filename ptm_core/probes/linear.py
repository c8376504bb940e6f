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

from ptm_core.base.messages import M_
from ptm_core.runs.artifacts import artifact_dir, load_npz, save_npz
from ptm_core.base.configs import PROBE_C_LIMITS, PROBE_C_RULES, PROBE_CS, PROBE_SOLVERS, ProbeConfig, stable_hash
from ptm_core.base import checks
from ptm_core.base.stats import accuracy_interval
from ptm_core.base.errors import Cancelled, PTMError
from ptm_core.probes.c_choice import sweep_C

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
    return M_("probe sweep {done}/{total}", done=done, total=total - 1) if done < total else M_("refit at the best C")


class _SklearnSweep:
    """One Pipeline per C, the reference the torch heads are tested against."""

    def __init__(self, split: list, max_iter: int, cancelled: CancelFn | None, fitted: Callable[[int], None]):
        self.split, self.max_iter, self.cancelled, self.fitted = split, max_iter, cancelled, fitted

    def scores(self, Cs: tuple[float, ...]) -> list[float]:
        X_fit, X_val, y_fit, y_val = self.split
        scores: list[float] = []
        for C in Cs:
            if self.cancelled is not None and self.cancelled():  # a half-swept probe has nothing worth keeping
                raise Cancelled()
            scores.append(float(_pipeline(C, self.max_iter).fit(X_fit, y_fit).score(X_val, y_val)))
            self.fitted(1)
        return scores

    def refit(self, X: np.ndarray, y: np.ndarray, C: float) -> Pipeline:
        return _pipeline(C, self.max_iter).fit(X, y)

    def describe(self, n_Cs: int) -> str:
        return f"sklearn lbfgs, {n_Cs} C values"


class LinearProbe(ClassifierMixin, BaseEstimator):
    """StandardScaler + LogisticRegression, C swept on a stratified validation split, then refit on all.

    C is read off the validation curve by `c_rule` ("one-se": the smallest C within one standard error of the best
    validation accuracy; "best": the argmax), and while that choice sits on an edge of `Cs` the sweep goes on a
    decade at a time, up to `c_limits` (None: never); ptm_core.probes.c_choice says why.
    solver "torch": every C of a round at once as a batch of heads (ptm_core.probes.sweep), the refit warm-started
    from the sweep's head; "sklearn": one Pipeline per C, the reference the torch heads are tested against.
    Either way `pipeline_` is a fitted sklearn Pipeline (the fine-tune head is read from it).
    """

    def __init__(self, Cs=DEFAULT_CS, val_size: float = 0.2, max_iter: int = 1000, random_state: int = 0,
                 solver: str = "torch", device: str = "auto", c_rule: str = "one-se",
                 c_limits: tuple[float, float] | None = PROBE_C_LIMITS):
        self.Cs = Cs
        self.val_size = val_size
        self.max_iter = max_iter
        self.random_state = random_state
        self.solver = solver
        self.device = device
        self.c_rule = c_rule
        self.c_limits = c_limits

    def fit(self, X: np.ndarray, y: np.ndarray, callback: SweepCallback | None = None,
            cancelled: CancelFn | None = None) -> "LinearProbe":
        """`callback(done, total)` runs after each fit (the sweep's, then the refit); `cancelled()` is polled before
        each. `total` counts the fits planned so far, so it grows by the extension's fits when there is one."""
        if self.solver not in SOLVERS:
            raise PTMError(f"Unknown probe solver '{self.solver}'; use one of {', '.join(SOLVERS)}.")
        if self.c_rule not in PROBE_C_RULES:  # before any fit, not after the sweep
            raise PTMError(f"Unknown rule for choosing C '{self.c_rule}'; use one of {', '.join(PROBE_C_RULES)}.")
        check_splittable(y, self.val_size, "train/validation")
        split = train_test_split(X, y, test_size=self.val_size, stratify=y, random_state=self.random_state)
        progress = _Progress(callback, len(self.Cs) + 1)
        if self.solver == "torch":
            from ptm_core.probes.sweep import HeadSweep

            sweeper = HeadSweep(split, self.max_iter, self.device, cancelled)
            score = progress.counted(sweeper.scores)  # a batch of heads is one step of progress
        else:
            sweeper = _SklearnSweep(split, self.max_iter, cancelled, progress.fitted)
            score = sweeper.scores
        sweep = sweep_C(self.Cs, score, len(split[3]), self.c_rule, self.c_limits, progress.plan)
        self.val_Cs_ = [c for c, _ in sweep.curve]
        self.val_scores_ = [a for _, a in sweep.curve]
        self.best_C_, self.best_val_C_, self.val_se_ = sweep.choice.C, sweep.choice.best_val_C, sweep.choice.val_se
        self.n_val_, self.extended_Cs_ = len(split[3]), sweep.extended_Cs
        self.pipeline_ = sweeper.refit(X, y, self.best_C_)
        progress.fitted(1)
        self.solver_ = sweeper.describe(len(sweep.curve))
        self.classes_ = self.pipeline_.classes_
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.pipeline_.predict(X)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.pipeline_.predict_proba(X)


class _Progress:
    """Fits done out of fits planned, for a SweepCallback; an extension past the grid adds to the plan."""

    def __init__(self, callback: SweepCallback | None, planned: int):
        self.callback, self.done, self.planned = callback, 0, planned

    def plan(self, more: int) -> None:
        self.planned += more

    def fitted(self, n: int) -> None:
        self.done += n
        if self.callback is not None:
            self.callback(self.done, self.planned)

    def counted(self, score: Callable[[tuple[float, ...]], list[float]]):
        def run(Cs: tuple[float, ...]) -> list[float]:
            scores = score(Cs)
            self.fitted(len(Cs))
            return scores
        return run


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
    # How C was chosen (ptm_core.probes.c_choice); zero or empty in results written before it was recorded.
    n_val: int = 0  # validation images the curve was measured on
    c_rule: str = ""  # "one-se" or "best"
    best_val_C: float | None = None  # the curve's argmax; best_C is smaller where the one-SE rule moved off it
    val_se: float | None = None  # one standard error of the best validation accuracy on n_val images
    extended_Cs: tuple[float, ...] = ()  # Cs swept past the grid's edges because the choice sat on one
    c_limits: tuple[float, float] | None = None  # how far past the edges the sweep could go

    def split(self, n: int) -> np.ndarray:
        """'train' or 'test' for each of the n images."""
        names = np.full(n, "train", dtype=object)
        names[self.test_indices] = "test"
        return names

    @property
    def test_accuracy_ci95(self) -> tuple[float, float]:
        """Wilson's 95 % interval of `test_accuracy` on these n_test images."""
        return accuracy_interval(self.test_accuracy, self.n_test)

    @property
    def val_curve_ci95(self) -> list[tuple[float, float]]:
        """Wilson's 95 % interval of each validation accuracy on the n_val images; [] where n_val is unknown."""
        return [accuracy_interval(a, self.n_val) for _, a in self.val_curve] if self.n_val else []

    @property
    def at_limit(self) -> bool:
        """The sweep went as far past an edge as it may and the choice still sits there."""
        if not self.extended_Cs or self.c_limits is None:
            return False
        Cs = [c for c, _ in self.val_curve]
        return self.best_C == min(Cs) == self.c_limits[0] or self.best_val_C == max(Cs) == self.c_limits[1]

    @property
    def c_rule_text(self) -> str:
        """What the rule did, in a sentence; "" for a result that did not record it."""
        if not self.c_rule or not self.n_val or self.best_val_C is None or self.val_se is None:
            return ""
        best, se = f"{dict(self.val_curve)[self.best_val_C]:.1%}", f"{100 * self.val_se:.1f} pt"
        if self.c_rule == "best":
            text = f"best validation accuracy: C={self.best_C:g} ({best} on {self.n_val} validation images)."
        elif self.best_C != self.best_val_C:
            text = (f"one-standard-error rule: C={self.best_C:g} is the smallest C within 1 SE ({se}) of the best "
                    f"validation accuracy, {best} at C={self.best_val_C:g} on {self.n_val} images; the curve is flat "
                    "within its noise there, so the stronger regularisation is kept.")
        else:
            text = (f"one-standard-error rule: C={self.best_C:g} has the best validation accuracy, {best} on "
                    f"{self.n_val} images, and no smaller C is within 1 SE ({se}) of it.")
        if self.extended_Cs:
            limit = " and stopped at its limit with the choice still on the edge" if self.at_limit else ""
            text += (f" The choice sat on an edge of the grid, so the sweep went on to C="
                     f"{', '.join(f'{c:g}' for c in self.extended_Cs)}{limit}.")
        return text

    def summary(self) -> dict:
        intervals = self.val_curve_ci95 or [None] * len(self.val_curve)
        return {"test_accuracy": self.test_accuracy, "test_accuracy_ci95": list(self.test_accuracy_ci95),
                "best_C": self.best_C, "n_train": self.n_train,
                "n_test": self.n_test, "seconds": self.seconds, "from_cache": self.from_cache, "solver": self.solver,
                "c_rule": self.c_rule, "c_rule_text": self.c_rule_text, "best_val_C": self.best_val_C,
                "val_se": self.val_se, "n_val": self.n_val, "sweep_extended": bool(self.extended_Cs),
                "extended_Cs": list(self.extended_Cs), "c_limits": None if self.c_limits is None else list(self.c_limits),
                "val_curve": [{"C": c, "val_accuracy": a, "ci95": None if ci is None else list(ci)}
                              for (c, a), ci in zip(self.val_curve, intervals)]}


def run_linear_probe(features: np.ndarray, labels: np.ndarray, config: ProbeConfig = ProbeConfig(),
                     callback: SweepCallback | None = None, cancelled: CancelFn | None = None,
                     device: str = "auto") -> ProbeResult:
    """`device` runs the torch solver there ("auto": a GPU if there is one); it changes speed, not results."""
    started = time.perf_counter()
    train, test = split_indices(labels, config.test_size, config.seed)
    probe = LinearProbe(config.Cs, config.val_size, config.max_iter, config.seed, config.solver, device, config.c_rule,
                        config.c_limits)
    probe.fit(features[train], labels[train], callback=callback, cancelled=cancelled)
    all_probabilities = probe.predict_proba(features)
    probabilities = all_probabilities[test]
    predictions = probe.classes_[np.argmax(probabilities, axis=1)]
    return ProbeResult(
        test_accuracy=float(np.mean(predictions == labels[test])),
        best_C=probe.best_C_,
        val_curve=list(zip(map(float, probe.val_Cs_), map(float, probe.val_scores_))),
        n_train=len(train), n_test=len(test), seconds=time.perf_counter() - started,
        test_indices=test, predictions=predictions, probabilities=probabilities,
        all_predictions=probe.classes_[np.argmax(all_probabilities, axis=1)],
        all_confidence=all_probabilities.max(axis=1).astype(np.float32), solver=probe.solver_,
        n_val=probe.n_val_, c_rule=config.c_rule, best_val_C=probe.best_val_C_, val_se=probe.val_se_,
        extended_Cs=tuple(probe.extended_Cs_), c_limits=config.c_limits,
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
                           from_cache=True, solver=meta.get("solver", ""), **_choice_from_meta(meta))
    result = run_linear_probe(features, labels, config, callback, cancelled)
    meta = {k: v for k, v in result.summary().items() if k not in ("val_curve", "from_cache", "c_rule_text")}
    save_npz(path, meta=meta, val_curve=np.array(result.val_curve), test_indices=result.test_indices,
             predictions=result.predictions, probabilities=result.probabilities,
             all_predictions=result.all_predictions, all_confidence=result.all_confidence)
    return result


def _choice_from_meta(meta: dict) -> dict:
    """How C was chosen, as a cache wrote it; a cache from before it was recorded gives the defaults (unknown)."""
    limits = meta.get("c_limits")
    return {"n_val": int(meta.get("n_val") or 0), "c_rule": meta.get("c_rule", ""), "best_val_C": meta.get("best_val_C"),
            "val_se": meta.get("val_se"), "extended_Cs": tuple(meta.get("extended_Cs") or ()),
            "c_limits": None if limits is None else tuple(limits)}


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

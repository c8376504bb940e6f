"""Label efficiency: accuracy on the fixed test split when only k labelled images per class are kept.

Each budget is drawn several times (one seed per draw picks which k images per class are labelled); a row's number is
the mean over its draws, with Student's t-interval over them (base.stats.mean_interval). The test split is the same
for every draw, so the interval says how much the choice of labelled images moves the mean, not how the test images
were drawn. With all labels there is nothing to draw: one run, and Wilson's interval on the test split instead.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ptm_core.base.messages import M_
from ptm_core.base.configs import BackboneConfig, DatasetConfig, FinetuneConfig, KNNConfig, ProbeConfig
from ptm_core.base.errors import Cancelled
from ptm_core.base.stats import accuracy_interval, mean_interval
from ptm_core.probes.knn import KNNProbe
from ptm_core.probes.linear import LinearProbe, split_indices

DEFAULT_KS: tuple[int | None, ...] = (1, 2, 5, 10, 25, None)  # None: every training image
SWEEP_MIN_K = 10  # below this a class cannot spare images for a validation split to choose C on
FIXED_C = 1.0
# Five draws: with fewer, a t-interval is wide mostly because of its t quantile, not the spread of the draws (t_0.975 is
# 12.7 with 2 draws, 4.3 with 3, 2.8 with 5, 1.96 with many). The probes on cached features take about a second more
# for the two extra draws (MNIST-5k), so all five run.
DEFAULT_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
# Fine-tuning takes minutes per draw on a CPU: it uses only the first three seeds, so its interval is wider (honestly).
FINETUNE_DRAWS = 3


@dataclass
class LabelSample:
    indices: np.ndarray  # into the full dataset, sorted
    short_classes: dict[int, int] = field(default_factory=dict)  # class -> images it had, when fewer than k


def sample_per_class(labels: np.ndarray, train: np.ndarray, k: int | None, seed: int) -> LabelSample:
    """Exactly k images of each class from `train` (seeded); a class with fewer gives all it has."""
    if k is None:
        return LabelSample(np.sort(train))
    rng = np.random.default_rng(seed)
    chosen, short = [], {}
    for label in np.unique(labels[train]):
        members = train[labels[train] == label]
        if len(members) < k:
            short[int(label)] = len(members)
        chosen.append(rng.choice(members, size=min(k, len(members)), replace=False))
    return LabelSample(np.sort(np.concatenate(chosen)), short)


def fit_linear(X: np.ndarray, y: np.ndarray, probe_config: ProbeConfig):
    """The linear probe for k labels per class.

    When a class has fewer than SWEEP_MIN_K images there are too few to carve a validation split
    from (with k=1 it is impossible), so C is fixed at 1.0 (StandardScaler + LogisticRegression);
    otherwise (k >= 10, or all labels) the usual LinearProbe C sweep is used.
    """
    if np.unique(y, return_counts=True)[1].min() < SWEEP_MIN_K:
        return make_pipeline(StandardScaler(), LogisticRegression(C=FIXED_C, max_iter=probe_config.max_iter)).fit(X, y)
    return LinearProbe(probe_config.Cs, probe_config.val_size, probe_config.max_iter, probe_config.seed,
                       probe_config.solver).fit(X, y)


@dataclass
class EfficiencyRow:
    k: int | None  # labels per class asked for; None: every training image
    method: str  # logreg | knn | finetune
    accuracies: list[float]
    n_labelled: list[int]
    short_classes: dict[int, int]
    n_test: int  # images in the fixed test split every draw is scored on
    n_classes: int = 1

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        return float(np.std(self.accuracies))

    @property
    def draws(self) -> int:
        return len(self.accuracies)

    @property
    def interval_kind(self) -> str:
        """"t" (Student's, over the draws) or "wilson" (one draw: Wilson's, on its n_test test images)."""
        return "t" if self.draws > 1 else "wilson"

    @property
    def ci95(self) -> tuple[float, float]:
        """The 95 % interval of `mean`: Student's t over the draws, kept within [0, 1] (an accuracy cannot leave it);
        for a single draw (all labels) Wilson's on the test split, since one draw has no spread to measure."""
        if self.interval_kind == "wilson":
            return accuracy_interval(self.accuracies[0], self.n_test)
        low, high = mean_interval(self.accuracies)
        return max(low, 0.0), min(high, 1.0)

    @property
    def labels_per_class(self) -> int:
        """k, or for all labels the mean per class actually used, so "all" has a place on a numeric axis."""
        return self.k if self.k is not None else int(round(np.mean(self.n_labelled) / max(self.n_classes, 1)))

    def to_dict(self) -> dict:
        """One type per column (a table of rows must convert to Arrow): k int, budget str ("1" ... "all")."""
        return {"k": self.labels_per_class, "budget": "all" if self.k is None else str(self.k),
                "all_labels": self.k is None, "method": self.method, "mean": self.mean, "std": self.std,
                "ci95": list(self.ci95), "interval": self.interval_kind, "draws": self.draws, "n_test": self.n_test,
                "accuracies": self.accuracies, "n_labelled": self.n_labelled,
                "short_classes": {str(c): n for c, n in self.short_classes.items()}}


FinetuneRunner = Callable[[np.ndarray, int], float]  # (train indices, seed) -> test accuracy


def finetune_runner(dataset_config: DatasetConfig, backbone_config: BackboneConfig, config: FinetuneConfig,
                    device: str = "auto", cancelled: Callable[[], bool] | None = None) -> FinetuneRunner:
    """A runner for `run_label_efficiency(finetune=...)`: no validation split (k may be 1), last weights kept."""
    from ptm_core.finetune.finetuning import finetune

    def run(indices: np.ndarray, seed: int) -> float:
        cfg = dataclasses.replace(config, val_size=0.0, seed=seed)
        return finetune(dataset_config, backbone_config, cfg, cancelled=cancelled, device=device,
                        train_subset=indices).test_accuracy

    return run


def run_label_efficiency(features: np.ndarray, labels: np.ndarray, ks=DEFAULT_KS, seeds=DEFAULT_SEEDS,
                         probe_config: ProbeConfig = ProbeConfig(), knn_config: KNNConfig = KNNConfig(),
                         finetune: FinetuneRunner | None = None, progress: Callable[[float, str], None] | None = None,
                         cancelled: Callable[[], bool] | None = None,
                         finetune_draws: int = FINETUNE_DRAWS) -> list[EfficiencyRow]:
    """Test accuracy over `seeds` per k and method, on the probes' fixed test split: each row's mean and its
    95 % interval (`EfficiencyRow.ci95`).

    The seed picks which k images per class are labelled; the test split never changes. With
    k=None (all labels) there is nothing to sample, so each method runs once (std 0, Wilson's interval).
    Fine-tuning runs only when a `finetune` runner (see `finetune_runner`) is given, on the first
    `finetune_draws` seeds only (it is the slow method).
    """
    train, test = split_indices(labels, probe_config.test_size, probe_config.seed)
    methods = ["logreg", "knn"] + (["finetune"] if finetune is not None else [])
    rows, started, total = [], time.perf_counter(), len(ks) * len(methods)
    for k in ks:
        samples = [sample_per_class(labels, train, k, seed) for seed in (seeds if k is not None else seeds[:1])]
        for method in methods:
            accuracies = []
            drawn = samples[:max(finetune_draws, 1)] if method == "finetune" else samples
            for seed, sample in zip(seeds, drawn):
                if cancelled is not None and cancelled():
                    raise Cancelled()
                X, y = features[sample.indices], labels[sample.indices]
                if method == "logreg":
                    accuracies.append(float(fit_linear(X, y, probe_config).score(features[test], labels[test])))
                elif method == "knn":
                    knn = KNNProbe(knn_config.k, knn_config.temperature).fit(X, y)
                    accuracies.append(float(knn.score(features[test], labels[test])))
                else:
                    accuracy = finetune(sample.indices, seed)
                    if cancelled is not None and cancelled():  # stopped early: not the accuracy of k labels
                        raise Cancelled()
                    accuracies.append(accuracy)
            rows.append(EfficiencyRow(k, method, accuracies, [len(s.indices) for s in drawn],
                                      samples[0].short_classes, len(test), n_classes=len(np.unique(labels[train]))))
            if progress is not None:
                progress(len(rows) / total, M_("k={k} {method} ({seconds:.0f} s)", k=M_("all") if k is None else k,
                                               method=method, seconds=time.perf_counter() - started))
    return rows

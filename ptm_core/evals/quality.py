"""Data quality from features: label issues, near-duplicates, train/test leaks and outliers, ranked worst first.

- Label issues: confident learning (Northcutt, Jiang & Chuang, "Confident Learning: Estimating Uncertainty in Dataset
  Labels", JAIR 2021) as cleanlab implements it (`cleanlab.filter.find_label_issues`, ranked by self-confidence;
  `cleanlab.rank.get_label_quality_scores` for each score), on out-of-fold probabilities of the probe the app uses
  (standardised features + logistic regression), from sklearn's `cross_val_predict` over seeded stratified folds.
- Near-duplicates: features propose, pixels confirm (ptm_core.evals.duplicates): pairs on the cosine k-NN graph
  (sklearn `NearestNeighbors`) at `QualityConfig.duplicate_similarity`, or at the looser `candidate_similarity` when
  their thumbnails correlate up to a small shift (ptm_core.base.quality: the measurements behind the defaults).
- Leaks: near-duplicate pairs with one image in the probe's train split and one in its test split.
- Outliers: the k-NN distance score (mean cosine distance to the k nearest neighbours; Ramaswamy, Rastogi & Shim,
  SIGMOD 2000, with the mean as in Angiulli & Pizzuti, PKDD 2002), the highest `outlier_share` of images.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ptm_core.base.configs import ProbeConfig
from ptm_core.base.errors import PTMError
from ptm_core.base.messages import M_
from ptm_core.base.quality import QualityConfig
from ptm_core.data.types import Dataset
from ptm_core.evals.duplicates import dataset_of, near_duplicates
from ptm_core.features.featureset import FeatureSet
from ptm_core.probes.linear import split_indices


@dataclass
class QualityReport:
    n: int
    config: QualityConfig
    label_issues: list[dict] = field(default_factory=list)  # {"row", "id", "given", "suggested", "score"}, worst first
    # {"rows", "ids", "similarity", "correlation" (of the thumbnails, None unless compared), "found_by"}, most similar
    # first (duplicates.near_duplicates)
    near_duplicates: list[dict] = field(default_factory=list)
    leaks: list[dict] = field(default_factory=list)  # {"test_row", "train_row", "test_id", "train_id", "similarity", ...}
    outliers: list[dict] = field(default_factory=list)  # {"row", "id", "score"}, highest first
    folds: int = 0  # the folds the probabilities came from (fewer than asked when a class is small)
    # How near-duplicates were found: "features + pixels", or "features" where the images could not be read.
    duplicate_method: str = "features + pixels"
    notes: list[str] = field(default_factory=list)  # what was changed or left out, in a sentence each
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        return {kind: len(getattr(self, kind)) for kind in ("label_issues", "near_duplicates", "leaks", "outliers")}

    def to_dict(self) -> dict:
        return {"n": self.n, "config": self.config.to_dict(), "folds": self.folds, "seconds": self.seconds,
                "duplicate_method": self.duplicate_method,
                "counts": self.counts(), "notes": list(self.notes), "label_issues": self.label_issues,
                "near_duplicates": self.near_duplicates, "leaks": self.leaks, "outliers": self.outliers}


def check_features(fs: FeatureSet) -> None:
    """One PTMError for features no quality check can read."""
    n = len(fs.labels)
    if n < 2:
        raise PTMError(f"Data quality needs at least 2 images; these features have {n}.")
    if not np.isfinite(fs.features).all():
        raise PTMError("The features contain NaN or infinite values; extract them again.")
    if len(np.unique(fs.labels)) < 2:
        raise PTMError("These features have a single class; label issues need at least two.")


def unit_rows(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float64), so a dot product is their cosine; an all-zero row stays zero."""
    x = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def out_of_fold_probabilities(features: np.ndarray, labels: np.ndarray, config: QualityConfig
                              ) -> tuple[np.ndarray, int, list[str]]:
    """(n x classes probabilities, each from a probe that never saw its image; folds used; notes).

    sklearn's `cross_val_predict` over `StratifiedKFold(shuffle=True, random_state=seed)`; the folds drop to the
    smallest class's size, so that every fold has each class (refused below 2)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    smallest = int(np.bincount(labels).min())
    if smallest < 2:
        raise PTMError(f"Label issues need at least 2 images in every class; class {int(np.argmin(np.bincount(labels)))} "
                       f"has {smallest}.")
    folds = min(config.folds, smallest)
    notes = [M_("{folds} folds instead of {asked}: the smallest class has {smallest} images.", folds=folds,
                asked=config.folds, smallest=smallest)] if folds < config.folds else []
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=config.C, max_iter=config.max_iter))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=config.seed)
    return cross_val_predict(probe, features, labels, cv=splitter, method="predict_proba"), folds, notes


def label_issues(fs: FeatureSet, config: QualityConfig) -> tuple[list[dict], int, list[str]]:
    """Images whose given label the out-of-fold probe doubts, worst first (cleanlab; see the module)."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    present, labels = np.unique(fs.labels, return_inverse=True)  # cleanlab wants classes 0..K-1, each present
    probabilities, folds, notes = out_of_fold_probabilities(fs.features, labels, config)
    # n_jobs=1: by default cleanlab forks a multiprocessing.Pool (one per core, on Linux by fork). Forked from a
    # server's worker thread, beside torch's and numba's thread pools, a child can hang on a lock some other thread
    # held at the fork: the quality panel then never returned and the server did not stop (seen in CI). Per class
    # the work is a quantile: one process is quick enough.
    ranked = find_label_issues(labels, probabilities, return_indices_ranked_by="self_confidence", n_jobs=1)
    scores = get_label_quality_scores(labels, probabilities)
    names = np.asarray(fs.class_names)
    issues = [{"row": int(i), "id": fs.ids[i], "given": str(names[present[labels[i]]]),
               "suggested": str(names[present[int(np.argmax(probabilities[i]))]]),
               "given_index": int(present[labels[i]]), "suggested_index": int(present[int(np.argmax(probabilities[i]))]),
               "score": float(scores[i])} for i in ranked]
    return issues, folds, notes


def neighbour_graph(unit: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows x k neighbour indices, their cosine similarities), nearest first, no image its own neighbour."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(unit) - 1)
    # kneighbors() without X leaves each indexed point out of its own list, also beside an exact copy of it.
    distances, indices = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(unit).kneighbors()
    return indices, 1.0 - distances


def leaks(pairs: list[dict], test_indices: np.ndarray, ids: list[str]) -> list[dict]:
    """The near-duplicate pairs that straddle the split: one image in test, the other in train."""
    test = set(np.asarray(test_indices, dtype=int).tolist())
    found = []
    for pair in pairs:
        a, b = pair["rows"]
        if (a in test) != (b in test):
            t, r = (a, b) if a in test else (b, a)
            found.append({"test_row": t, "train_row": r, "test_id": ids[t], "train_id": ids[r],
                          "similarity": pair["similarity"], "correlation": pair["correlation"],
                          "found_by": pair["found_by"]})
    return found


def outliers(similarity: np.ndarray, ids: list[str], share: float) -> list[dict]:
    """The `share` of images farthest from their k nearest neighbours (mean cosine distance), highest first."""
    scores = 1.0 - similarity.mean(axis=1)
    top = max(1, math.ceil(share * len(scores)))
    order = np.argsort(-scores, kind="stable")[:top]
    return [{"row": int(i), "id": ids[i], "score": float(scores[i])} for i in order]


def duplicated_in_train(features: np.ndarray, test_indices: np.ndarray,
                        threshold: float = QualityConfig().duplicate_similarity) -> int:
    """How many test images have a near-duplicate (cosine >= threshold) in train: one 1-NN query of the test rows
    against the train rows, cheap enough to run with every probe."""
    test = np.asarray(test_indices, dtype=int)
    train = np.setdiff1d(np.arange(len(features)), test)
    if not len(test) or not len(train):
        return 0
    unit = unit_rows(features)
    nearest = np.empty(len(test))
    for start in range(0, len(test), 2048):  # bounded memory: 2,048 x train similarities at a time
        nearest[start:start + 2048] = (unit[test[start:start + 2048]] @ unit[train].T).max(axis=1)
    return int(np.sum(nearest >= threshold))


def probe_split(labels: np.ndarray, seed: int) -> tuple[np.ndarray | None, str | None]:
    """The test rows of the app's probe split (probes.linear.split_indices, its test size, this seed), or None and
    why not (too few images to split)."""
    try:
        return split_indices(labels, ProbeConfig().test_size, seed)[1], None
    except PTMError as exc:
        return None, M_("No train/test leaks: {reason}", reason=exc.for_ui())


def quality(fs: FeatureSet, config: QualityConfig = QualityConfig(), test_indices: np.ndarray | None = None,
            dataset: Dataset | None = None, pixels: bool = True) -> QualityReport:
    """Label issues, near-duplicates, leaks and outliers of `fs`. Leaks straddle `test_indices` (default: the
    probe's split with `config.seed`). Near-duplicates are confirmed on the pixels of `dataset` (its images matched
    to `fs` by id; default: the dataset `fs.meta` names); with `pixels=False`, or where no dataset loads, by features
    alone, which the report says."""
    config.check()
    check_features(fs)
    started = time.perf_counter()
    issues, folds, notes = label_issues(fs, config)
    indices, similarity = neighbour_graph(unit_rows(fs.features), config.k)
    why = M_("pixels were not asked for")
    if pixels and dataset is None:
        dataset, why = dataset_of(fs.meta)
    dataset = dataset if pixels else None
    if dataset is None:
        notes.append(M_("Near-duplicates by features alone (cosine >= {threshold:g}): {why}; copies shifted by a "
                        "pixel may be missed.", threshold=config.duplicate_similarity, why=why))
    pairs = near_duplicates(indices, similarity, fs.ids, config, dataset)
    if len(pairs) > config.max_pairs:
        notes.append(M_("{n:,} near-duplicate pairs found; the {shown:,} most similar are listed.", n=len(pairs),
                        shown=config.max_pairs))
        pairs = pairs[:config.max_pairs]
    if test_indices is None:
        test_indices, split_why = probe_split(fs.labels, config.seed)
        notes += [split_why] if split_why else []
    found = leaks(pairs, test_indices, fs.ids) if test_indices is not None else []
    return QualityReport(len(fs.labels), config, issues, pairs, found, outliers(similarity, fs.ids, config.outlier_share),
                         folds, "features + pixels" if dataset is not None else "features", notes,
                         time.perf_counter() - started)


def with_config(config: QualityConfig, **changes) -> QualityConfig:
    """`config` with some settings changed (the CLI's flags)."""
    return dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})

"""How far to trust a 2-D/3-D map: does it keep neighbourhoods and class structure of the features?"""
from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from ptm_core.base.messages import M_
from ptm_core.base.errors import PTMError
from ptm_core.base.stats import PairedTest, paired_test

KNN_MAX = 10_000  # kNN accuracy on at most this many points: a fixed split keeps it to ~1 s at 1280 dims
TEST_SIZE = 0.25


def _subsample(n: int, size: int, seed: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def map_trustworthiness(features: np.ndarray, coords: np.ndarray, k: int = 10, sample: int = 2000, seed: int = 0,
                        metric: str = "cosine") -> float:
    """sklearn's trustworthiness (1 = no false neighbours in the map) on a seeded subsample."""
    idx = _subsample(len(features), sample, seed)
    k = max(1, min(k, (len(idx) - 1) // 2))  # sklearn requires n_neighbors < n / 2
    return float(trustworthiness(features[idx], coords[idx], n_neighbors=k, metric=metric))


def knn_accuracies(features: np.ndarray, coords: np.ndarray, labels: np.ndarray, k: int = 10, seed: int = 0,
                   metric: str = "cosine") -> PairedTest | None:
    """kNN in the feature space (a) and in the map (b) on the same seeded split, tested image by image (McNemar);
    None if unlabelled."""
    idx = _subsample(len(features), KNN_MAX, seed)
    y = labels[idx]
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2 or len(idx) < 8:
        return None
    # Stratify when every class can appear on both sides; otherwise a plain seeded split still compares fairly.
    stratify = y if counts.min() >= 2 and int(np.ceil(TEST_SIZE * len(y))) >= len(classes) else None
    train, test = train_test_split(np.arange(len(idx)), test_size=TEST_SIZE, random_state=seed, stratify=stratify)
    k = max(1, min(k, len(train)))
    predictions = [KNeighborsClassifier(n_neighbors=k, metric=space_metric).fit(space[train], y[train]).predict(space[test])
                   for space, space_metric in ((features[idx], metric), (coords[idx], "euclidean"))]
    return paired_test(y[test], *predictions)


def pca_variance(features: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """Fraction of the feature variance the first 2 and first 3 principal components explain."""
    idx = _subsample(len(features), KNN_MAX, seed)
    n_components = min(3, *features[idx].shape)
    ratios = PCA(n_components=n_components, random_state=seed).fit(features[idx]).explained_variance_ratio_
    cumulative = np.cumsum(np.pad(ratios, (0, 3 - len(ratios))))
    return float(cumulative[1]), float(cumulative[2])


def _summary(trust: float, knn: PairedTest | None, pca2: float) -> str:
    local = (M_("keeps local neighbourhoods well") if trust >= 0.9 else
             M_("keeps local neighbourhoods reasonably") if trust >= 0.8 else M_("distorts many local neighbourhoods"))
    text = M_("The map {local} (trustworthiness {trust:.2f})", local=local, trust=trust)
    if knn is not None:  # worded by McNemar's test on the kNN test images, not by the gap between the two
        classes = {"b": M_("separates classes more cleanly than the features do"),
                   "a": M_("separates classes less well than the features do"),
                   "tie": M_("separates classes as well as the features do, as far as its test images can tell")}
        p = "p < 0.001" if knn.p_value < 0.001 else f"p = {knn.p_value:.2g}"
        text = M_("{text} and {classes} (kNN accuracy {in_map:.0%} in the map vs {in_features:.0%} in the features on "
                  "{n:,} test images, McNemar {p})", text=text, classes=classes[knn.verdict], in_map=knn.b_accuracy,
                  in_features=knn.a_accuracy, n=knn.n_test, p=p)
    linear = M_("so a linear view would already show much of the structure") if pca2 >= 0.5 else \
        M_("so most of the structure is non-linear or spread over many directions")
    return M_("{text}; the first two principal components explain {pca:.0%} of the variance, {linear}.", text=text,
              pca=pca2, linear=linear)


def map_faithfulness(features: np.ndarray, coords: np.ndarray, labels: np.ndarray | None, k: int = 10,
                     sample: int = 2000, seed: int = 0, metric: str = "cosine") -> dict:
    """Trustworthiness, kNN accuracy in features vs map, PCA variance, and a one-sentence summary.

    `metric` is the feature-space metric (cosine: how backbone features are usually compared); the
    map is always measured with euclidean distance, which is what the eye sees.
    Keys: trustworthiness, knn_accuracy_features, knn_accuracy_map, knn_n_test, knn_p_value (None without 2+ classes),
    pca_variance_2d, pca_variance_3d, k, n_points, n_trust_sample, summary.
    """
    features, coords = np.asarray(features), np.asarray(coords)
    if len(features) != len(coords) or (labels is not None and len(labels) != len(features)):
        raise PTMError(f"Features ({len(features)}), map ({len(coords)}) and labels must cover the same images.")
    if len(features) < 4:
        raise PTMError("Faithfulness needs at least 4 points.")
    trust = map_trustworthiness(features, coords, k, sample, seed, metric)
    knn = None if labels is None else knn_accuracies(features, coords, np.asarray(labels), k, seed, metric)
    pca2, pca3 = pca_variance(features, seed)
    return {
        "trustworthiness": trust,
        "knn_accuracy_features": None if knn is None else knn.a_accuracy,
        "knn_accuracy_map": None if knn is None else knn.b_accuracy,
        "knn_n_test": None if knn is None else knn.n_test, "knn_p_value": None if knn is None else knn.p_value,
        "pca_variance_2d": pca2, "pca_variance_3d": pca3,
        "k": k, "n_points": len(features), "n_trust_sample": min(len(features), sample),
        "summary": _summary(trust, knn, pca2),
    }

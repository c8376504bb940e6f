"""Automatic clusters on a map, each said by its class mix: "87 % coat, 9 % pullover", its purity, its exemplars.

HDBSCAN (Campello, Moulavi & Sander, PAKDD 2013; sklearn.cluster.HDBSCAN) finds clusters of any shape and leaves
points in no dense region as noise (-1), so the number of clusters is not a setting. It runs on the map's own 2-D
(or 3-D) coordinates by default, which is what the user sees, or on the features (L2-normalised, PCA to
`pca_dims`): then a cluster is one in the feature space, which the map may draw split or merged.

The clustering is the slow part (seconds for 50,000 points) and is cached on disk per map and config
(artifact dir "clusters", keyed by `cache_key`, which the caller builds from the map's key); what is said about
each cluster (class mix, purity, exemplars) is recomputed from the cached cluster ids, vectorised: one bincount
over cluster * n_classes + class (benchmarks/cluster_labels.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ptm_core.base import checks
from ptm_core.base.configs import Keyed, stable_hash
from ptm_core.base.errors import PTMError
from ptm_core.runs.artifacts import artifact_dir, load_npz, save_npz

SPACES = ("map", "features")
SELECTIONS = ("leaf", "eom")
EXEMPLARS = 6  # thumbnails per cluster: one row of the exemplar strip
TOP_CLASSES = 2  # classes named in a label
MIN_SHARE = 0.05  # a second class under this share is left out of the label


def default_min_cluster_size(n: int) -> int:
    """max(10, n // 100): a cluster holds at least 1 % of the points (and 10). On the 10-class digits and MNIST maps
    this gives about one cluster per class, split where the map splits a class (benchmarks/cluster_labels.py); a
    fixed size would shatter a 50,000-point map into hundreds of specks or merge a 300-point map into one."""
    return max(10, n // 100)


@dataclass(frozen=True)
class ClusterConfig(Keyed):
    """space: "map" (the map's coordinates) or "features" (L2-normalised, PCA to pca_dims).
    min_cluster_size: None = default_min_cluster_size(n). min_samples: HDBSCAN's density smoothing; a small fixed
    value (sklearn's default is min_cluster_size) because core distances over 500 neighbours made a 50k map
    about twice as slow and left more noise (benchmarks/cluster_labels.py). selection: "leaf" (the finest clusters of
    at least min_cluster_size) rather than sklearn's default "eom" (excess of mass), which on a UMAP map of 300
    digits (lite0 features, 64 px) kept one cluster of 270 points holding nine digits beside a pure '0'
    (size-weighted purity 20 %), where "leaf" found 9 clusters of purity 81 % ('100 % 1', '90 % 9',
    '94 % 4, 6 % 7', ...) and left 100 points as noise. seed: the PCA's (randomised solver) for space="features"."""

    space: str = "map"
    min_cluster_size: int | None = None
    min_samples: int = 10
    selection: str = "leaf"
    pca_dims: int = 50
    seed: int = 0

    def size_for(self, n: int) -> int:
        return self.min_cluster_size if self.min_cluster_size is not None else default_min_cluster_size(n)

    def describe(self, n: int) -> str:
        where = "the map's coordinates" if self.space == "map" else f"the features (PCA to {self.pca_dims} dims)"
        return (f"HDBSCAN ({self.selection} selection), min_cluster_size {self.size_for(n)}, "
                f"min_samples {self.min_samples}, on {where}")


@dataclass
class Cluster:
    id: int
    size: int
    centre: tuple[float, ...]  # map coordinates of the member nearest the members' mean: where its label goes
    classes: list[tuple[str, float]]  # (class, share), largest first, at most TOP_CLASSES, shares >= MIN_SHARE
    purity: float  # share of the largest class
    exemplars: list[int]  # rows nearest the cluster's mean in the space clustered, nearest first
    label: str  # "87 % coat, 9 % pullover"


@dataclass
class Clusters:
    ids: np.ndarray  # per point: its cluster, -1 noise
    clusters: list[Cluster]
    n_noise: int
    config: ClusterConfig
    description: str  # what produced them
    seconds: float  # clustering time (the original's, when read from the cache)
    cache_hit: bool = False
    meta: dict = field(default_factory=dict)


def _check(coords: np.ndarray, labels: np.ndarray, config: ClusterConfig, features: np.ndarray | None) -> None:
    if config.space not in SPACES:
        raise PTMError(f"Unknown cluster space '{config.space}'; use one of {', '.join(SPACES)}.")
    if config.selection not in SELECTIONS:
        raise PTMError(f"Unknown HDBSCAN cluster selection '{config.selection}'; use one of {', '.join(SELECTIONS)}.")
    if coords.ndim != 2 or coords.shape[1] not in (2, 3):
        raise PTMError(f"Clusters need a 2-D or 3-D map, got coordinates of shape {coords.shape}.")
    if len(labels) != len(coords):
        raise PTMError(f"{len(labels)} labels for {len(coords)} map points.")
    if config.space == "features" and (features is None or len(features) != len(coords)):
        raise PTMError("Clusters on the features need the features of the map's points.")
    size = config.size_for(len(coords))
    if size < 2 or config.min_samples < 1:
        raise PTMError(f"HDBSCAN needs min_cluster_size >= 2 and min_samples >= 1 (got {size}, {config.min_samples}).")
    if len(coords) < size:
        raise PTMError(f"{len(coords)} points are fewer than the smallest cluster ({size}).")
    checks.seed("cluster seed", config.seed)
    space = coords if config.space == "map" else features
    if not np.isfinite(space).all():
        raise PTMError("The points to cluster hold NaN or infinite values.")


def clustering_space(coords: np.ndarray, config: ClusterConfig, features: np.ndarray | None = None) -> np.ndarray:
    if config.space == "map":
        return np.asarray(coords, dtype=np.float64)
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import normalize

    x = normalize(np.asarray(features, dtype=np.float32))
    dims = min(config.pca_dims, x.shape[1], len(x))
    if dims >= x.shape[1]:
        return x.astype(np.float64)
    return PCA(dims, svd_solver="randomized", random_state=config.seed).fit_transform(x).astype(np.float64)


def run_hdbscan(space: np.ndarray, config: ClusterConfig) -> tuple[np.ndarray, np.ndarray]:
    """(cluster id per point, -1 noise; HDBSCAN's membership strength per point, 0-1)."""
    from sklearn.cluster import HDBSCAN

    size = config.size_for(len(space))
    model = HDBSCAN(min_cluster_size=size, min_samples=min(config.min_samples, len(space) - 1),
                    cluster_selection_method=config.selection, copy=True)
    model.fit(space)
    return model.labels_.astype(np.int32), model.probabilities_.astype(np.float32)


def label_text(classes: list[tuple[str, float]]) -> str:
    return ", ".join(f"{round(share * 100)} % {name}" for name, share in classes)


def describe_clusters(ids: np.ndarray, labels: np.ndarray, class_names: list[str], coords: np.ndarray,
                      space: np.ndarray | None = None, exemplars: int = EXEMPLARS) -> list[Cluster]:
    """Each cluster's size, class mix, purity, label position and exemplars, from the cluster ids (vectorised: the
    class mix is one bincount over cluster * n_classes + class; the exemplars one sort of squared distances)."""
    ids, labels = np.asarray(ids), np.asarray(labels)
    space = coords if space is None else space
    n_clusters, n_classes = int(ids.max()) + 1 if len(ids) else 0, len(class_names)
    member = ids >= 0
    if n_clusters == 0:
        return []
    c, y = ids[member], labels[member]
    counts = np.bincount(c * n_classes + y, minlength=n_clusters * n_classes).reshape(n_clusters, n_classes)
    sizes = counts.sum(axis=1)
    shares = counts / np.maximum(sizes, 1)[:, None]
    top = np.argsort(-shares, axis=1, kind="stable")[:, :TOP_CLASSES]
    rows = np.flatnonzero(member)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])  # where each cluster begins in the ordered rows
    ordered = rows[_nearest_first(space[member], c, n_clusters, sizes)]
    on_map = ordered if space is coords else rows[_nearest_first(coords[member], c, n_clusters, sizes)]
    result = []
    for k in range(n_clusters):
        mix = [(class_names[j], float(shares[k, j])) for i, j in enumerate(top[k])
               if shares[k, j] > 0 and (i == 0 or shares[k, j] >= MIN_SHARE)]
        exemplar_rows = ordered[starts[k]:starts[k] + min(exemplars, sizes[k])].tolist()
        result.append(Cluster(k, int(sizes[k]), tuple(float(v) for v in coords[on_map[starts[k]]]), mix,
                              float(shares[k, top[k, 0]]), exemplar_rows, label_text(mix)))
    return result


def _nearest_first(points: np.ndarray, c: np.ndarray, n_clusters: int, sizes: np.ndarray) -> np.ndarray:
    """An order of the members: by cluster, and within each, nearest the cluster's mean first (the means by
    bincount with weights, one column at a time)."""
    means = np.column_stack([np.bincount(c, weights=col, minlength=n_clusters) for col in points.T])
    means /= np.maximum(sizes, 1)[:, None]
    distance = ((points - means[c]) ** 2).sum(axis=1)
    return np.lexsort((distance, c))


def cluster_path(cache_key: str, config: ClusterConfig):
    return artifact_dir("clusters") / f"{stable_hash([cache_key, config.key()])}.npz"


def find_clusters(coords: np.ndarray, labels: np.ndarray, class_names: list[str],
                  config: ClusterConfig = ClusterConfig(), features: np.ndarray | None = None,
                  cache_key: str | None = None) -> Clusters:
    """Cluster the map's points (cached per `cache_key` and config) and say what each cluster holds.

    `cache_key`: the map's key (flows.explore.map_key), so clusters are recomputed only when the map changes;
    None: no cache.
    """
    coords, labels = np.asarray(coords), np.asarray(labels)
    _check(coords, labels, config, features)
    space = clustering_space(coords, config, features)
    path = cluster_path(cache_key, config) if cache_key else None
    cached = load_npz(path) if path else None
    if cached is not None and cached[0]["ids"].shape == (len(coords),):
        ids, seconds, hit = cached[0]["ids"], float(cached[1].get("seconds", 0.0)), True
    else:
        started = time.perf_counter()
        ids, strength = run_hdbscan(space, config)
        seconds, hit = time.perf_counter() - started, False
        if path:
            save_npz(path, meta={"seconds": seconds, "config": config.to_dict()}, ids=ids, strength=strength)
    clusters = describe_clusters(ids, labels, class_names, coords, space if config.space == "features" else None)
    return Clusters(ids, clusters, int(np.sum(ids < 0)), config, config.describe(len(coords)), seconds, hit)

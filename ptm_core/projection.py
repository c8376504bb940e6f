"""2-D maps of feature sets (UMAP, PCA), cached on disk next to the features they map."""
from __future__ import annotations

import threading
import time

import numpy as np
from sklearn.decomposition import PCA

from ptm_core.artifacts import artifact_dir, load_npz, save_npz
from ptm_core.configs import ProjectionConfig, stable_hash
from ptm_core.errors import PTMError

METHODS = ("umap", "pca")
_warm = threading.Event()


def _umap(features: np.ndarray, config: ProjectionConfig, approximate: bool = False) -> np.ndarray:
    import umap

    n_neighbors = max(2, min(config.n_neighbors, len(features) - 1))
    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=config.min_dist, metric=config.metric,
                        random_state=config.seed, n_jobs=1, force_approximation_algorithm=approximate)
    return reducer.fit_transform(features)


def compute_projection(features: np.ndarray, config: ProjectionConfig) -> np.ndarray:
    if config.method not in METHODS:
        raise PTMError(f"Unknown projection '{config.method}'; use one of {', '.join(METHODS)}.")
    if len(features) < 4:
        raise PTMError("A map needs at least 4 points.")
    if config.method == "pca":
        coords = PCA(n_components=2, random_state=config.seed).fit_transform(features)
    else:
        coords = _umap(features, config)
    return np.asarray(coords, dtype=np.float32)


def project(features: np.ndarray, feature_key: str, config: ProjectionConfig) -> tuple[np.ndarray, dict]:
    """Coordinates (N x 2) and timing; a map computed before is read back from disk."""
    path = artifact_dir("projections") / f"{stable_hash([feature_key, config.key()])}.npz"
    cached = load_npz(path)
    if cached is not None and len(cached[0]["coords"]) == len(features):
        return cached[0]["coords"], dict(cached[1], cache_hit=True)
    started = time.perf_counter()
    coords = compute_projection(features, config)
    meta = {"method": config.method, "seconds": time.perf_counter() - started, "config": config.to_dict()}
    save_npz(path, meta=meta, coords=coords)
    return coords, dict(meta, cache_hit=False)


def warm_up_umap() -> threading.Thread:
    """Pay umap-learn's one-off numba compilation in the background, once per process."""
    def run() -> None:
        if not _warm.is_set():
            _warm.set()
            sample = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)
            # Small inputs take the exact-kNN path, large ones nearest-neighbour descent: compile both.
            _umap(sample, ProjectionConfig())
            _umap(sample, ProjectionConfig(), approximate=True)

    thread = threading.Thread(target=run, name="umap-warm-up", daemon=True)
    thread.start()
    return thread

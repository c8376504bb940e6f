"""2-D and 3-D maps of feature sets (UMAP, PCA, t-SNE), cached on disk next to the features they map.

Large sets are fitted on a seeded subsample (`fit_max`) and the other points are placed afterwards,
`PLACE_CHUNK` at a time: UMAP and PCA by their own `transform`; t-SNE has none, so each remaining point
goes to the mean map position of its `PLACE_K` nearest fitted neighbours in feature space. PCA and
t-SNE placement is row by row, so chunks give exactly what one pass would; UMAP's `transform` is not
(its kNN query and its SGD draw from one random stream per call: 5,000 points placed in 5 chunks rather
than at once landed elsewhere for 4,004 of them, the kNN differing for 15), so the chunks are fixed by the
point count and the same settings give the same map. `meta['subsampled']`, `meta['n_fit']` and
`meta['placement']` say what happened so the UI can tell the user.
"""
from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from ptm_core.runs.artifacts import artifact_dir, load_npz, save_npz
from ptm_core.base.configs import ProjectionConfig, stable_hash
from ptm_core.base import checks
from ptm_core.base.errors import Cancelled, PTMError

log = logging.getLogger(__name__)
METHODS = ("umap", "pca", "tsne")
METRICS = ("euclidean", "cosine", "correlation", "manhattan")  # distances UMAP and t-SNE both accept
# Beyond these many points the map is fitted on a subsample. t-SNE is several times slower per point than
# UMAP, so its cap is lower; estimate_seconds (maps.estimate) gives a fit at either cap.
FIT_MAX = {"umap": 20_000, "tsne": 5_000}
PLACE_K = 10
# Points placed per step (20,000 x 1280 float32 is 100 MB read at a time); progress and Cancel act between steps.
PLACE_CHUNK = 20_000
# umap-learn uses exact kNN below 4096 points, but nearest-neighbour descent was faster here from
# 1000 points on (3000 x 1280: 3.4 s vs 10.2 s, 1000: 1.3 vs 1.7 s), so it is forced from there.
UMAP_APPROXIMATE_FROM = 1000
# A fit of every point (nothing left to place) gets its kNN graph from an exact search (float32 GEMMs,
# _exact_knn), handed to umap-learn as `precomputed_knn`: nearest-neighbour descent's kernels are numba
# closures that no on-disk cache keeps, and compiling them was most of a cold 5000 x 1280 map's time,
# far more than the exact kNN costs (maps.estimate's UMAP_DESCENT_COMPILE_SECONDS vs
# EXACT_KNN_SECONDS_PER_CELL; the first map: benchmarks/RESULTS.md's "First UMAP in a fresh process").
# Only metrics a matrix product computes; a subsampled fit keeps NN-descent, whose search index
# UMAP.transform needs to place the other points.
EXACT_KNN_METRICS = ("euclidean", "cosine")
# Exact kNN grows with n^2 (maps.estimate.EXACT_KNN_SECONDS_PER_CELL), while NN-descent, once compiled, stays
# ~linear (UMAP_KNN_SECONDS_PER_CELL there). Up to 10k points the cold process's NN-descent compile saved is
# worth the warm server's extra seconds; beyond, NN-descent. The rule depends on the data only, so a map stays
# the same map.
EXACT_KNN_MAX = 10_000
KNN_CHUNK = 1024  # rows per distance block: 1024 x 20,000 float32 is 80 MB

_warm = threading.Event()  # warm-up started (it runs once per process)
_warm_done = threading.Event()  # the default UMAP path is compiled: the next real call pays no compilation
_descent_compiled = threading.Event()  # NN-descent's kernels are compiled (by a map that needed them)
_transform_compiled = threading.Event()  # UMAP.transform's kernels are compiled (by a map that placed points)
_compiled_paths: set[tuple[str, bool]] = set()  # (metric, reproducible) UMAP variants this process has run


def _umap_path(config: ProjectionConfig) -> tuple[str, bool]:
    # numba builds separate kernels per metric and for the parallel (unseeded) layout.
    return config.metric, config.reproducible


def fit_limit(config: ProjectionConfig) -> int | None:
    return config.fit_max if config.fit_max is not None else FIT_MAX.get(config.method)


def validate(config: ProjectionConfig, n: int) -> None:
    """Raise a one-line PTMError for settings no method can honour."""
    if config.method not in METHODS:
        raise PTMError(f"Unknown projection '{config.method}'; use one of {', '.join(METHODS)}.")
    if config.method != "pca" and config.metric not in METRICS:
        raise PTMError(f"Unknown distance '{config.metric}'; use one of {', '.join(METRICS)}.")
    if config.n_epochs is not None and config.n_epochs < 1:
        raise PTMError("UMAP needs at least 1 layout epoch.")
    if config.n_components not in (2, 3):
        raise PTMError(f"A map has 2 or 3 dimensions, not {config.n_components}.")
    if n < 4:
        raise PTMError("A map needs at least 4 points.")
    if config.n_neighbors < 2:
        raise PTMError("UMAP needs n_neighbors >= 2.")
    checks.number("UMAP min_dist (--min-dist)", config.min_dist, 0.0, 1.0)
    checks.number("t-SNE perplexity (--perplexity; 5-50 is usual)", config.perplexity, 0, 10_000, lo_open=True)
    checks.seed("map seed (--seed)", config.seed)
    if config.pca_dims is not None and config.pca_dims < config.n_components:
        raise PTMError(f"PCA pre-reduction to {config.pca_dims} dims is below the map's {config.n_components}.")
    if config.fit_max is not None and config.fit_max < 4:
        raise PTMError("fit_max must be at least 4 points.")


def _umap_neighbors(config: ProjectionConfig, n: int) -> int:
    return max(2, min(config.n_neighbors, n - 1))


def _exact_knn(x: np.ndarray, config: ProjectionConfig) -> tuple[np.ndarray, np.ndarray, None]:
    """(indices, distances, no search index) in umap-learn's `precomputed_knn` layout, each point first.

    Float32 GEMMs in torch, a chunk of rows at a time: sklearn's brute search upcasts float32 to float64
    for euclidean distances and was the slower of the two.
    """
    import torch

    k = _umap_neighbors(config, len(x))
    data = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if config.metric == "cosine":
        data = torch.nn.functional.normalize(data, dim=1)
    sq = (data * data).sum(1)
    indices, distances = [], []
    for lo in range(0, len(data), KNN_CHUNK):
        block = data[lo:lo + KNN_CHUNK] @ data.T
        # cosine: 1 - cos of unit rows; euclidean: |a|^2 + |b|^2 - 2ab, clamped where rounding goes below 0
        dist = (1.0 - block) if config.metric == "cosine" else (sq[lo:lo + KNN_CHUNK, None] + sq[None] - 2 * block)
        rows = torch.arange(len(block))
        dist.clamp_(min=0)[rows, rows + lo] = -1.0  # the point itself first, even among exact duplicates
        d, i = torch.topk(dist, k, dim=1, largest=False)
        d[:, 0] = 0.0
        indices.append(i)
        distances.append(d if config.metric == "cosine" else d.sqrt())
    return torch.cat(indices).numpy(), torch.cat(distances).numpy(), None


def _umap_reducer(config: ProjectionConfig, n: int, approximate: bool = False, knn: tuple | None = None):
    import umap

    # reproducible: a seed forces umap onto one thread; unseeded runs use every core but differ run to run.
    seed, jobs = (config.seed, 1) if config.reproducible else (None, -1)
    return umap.UMAP(n_components=config.n_components, n_neighbors=_umap_neighbors(config, n),
                     min_dist=config.min_dist, metric=config.metric, random_state=seed, n_jobs=jobs,
                     n_epochs=config.n_epochs, precomputed_knn=knn or (None, None, None),
                     force_approximation_algorithm=approximate or n >= UMAP_APPROXIMATE_FROM)


def _fit_umap(x: np.ndarray, config: ProjectionConfig, exact: bool, approximate: bool = False):
    """A fitted UMAP; `exact`: on sklearn's exact kNN graph (no transform afterwards)."""
    knn = _exact_knn(x, config) if exact else None
    with warnings.catch_warnings():  # "no NNDescent object, so no transform": exactly why it is only used then
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]")
        model = _umap_reducer(config, len(x), approximate, knn).fit(x)
    if knn is None:
        _descent_compiled.set()
    return model


def variant_compiled(config: ProjectionConfig) -> bool:
    """Whether this process has run a UMAP with this config's metric and reproducibility (its kernels are compiled)."""
    return _umap_path(config) in _compiled_paths


def descent_compiled() -> bool:
    """Whether NN-descent's kernels are compiled in this process."""
    return _descent_compiled.is_set()


def transform_compiled() -> bool:
    """Whether UMAP.transform's kernels are compiled in this process."""
    return _transform_compiled.is_set()


def exact_graph(config: ProjectionConfig, n_fit: int, n_rest: int) -> bool:
    return n_rest == 0 and n_fit <= EXACT_KNN_MAX and config.metric in EXACT_KNN_METRICS


_UMAP_LOCK = threading.Lock()


def _umap(features: np.ndarray, config: ProjectionConfig, approximate: bool = False, exact: bool = False) -> None:
    # One UMAP at a time per process: the warm-up thread and a job compiling or running numba
    # kernels side by side hung here (numba's workqueue threading layer is not thread-safe).
    with _UMAP_LOCK:
        _fit_umap(features, config, exact, approximate)


def check_degenerate(features: np.ndarray, n_components: int = 2) -> None:
    """Refuse inputs no map can show, before any native code sees them.

    Identical rows (20 copies of one white image, a collapsed backbone) crashed scikit-learn's
    Barnes-Hut t-SNE with a segfault; they also make UMAP's and PCA's output meaningless.
    """
    if not np.isfinite(features).all():
        raise PTMError("The features contain NaN or infinite values; a map cannot be drawn. Extract them again.")
    rows = np.ascontiguousarray(features).view(np.dtype((np.void, features.dtype.itemsize * features.shape[1])))
    distinct = len(np.unique(rows))
    needed = max(4, n_components + 1)
    if distinct < needed:
        what = "all identical" if distinct == 1 else f"only {distinct} different ones"
        raise PTMError(f"The {len(features)} feature rows are {what} (zero variance): a map needs at least {needed} "
                       f"different points. The images may be identical, or the backbone gives one output for all.")


def _tsne_isolated(features: np.ndarray, config: ProjectionConfig) -> np.ndarray:
    """t-SNE in a child process: a native crash there is an error message, not a dead server.

    A plain `python -m ptm_core.maps.projection` child rather than multiprocessing: spawn re-imports
    the parent's main script (the Streamlit runner, a test file), which is neither cheap nor safe.
    """
    with tempfile.TemporaryDirectory(prefix="ptm-tsne-") as tmp:
        src, out = Path(tmp) / "features.npy", Path(tmp) / "coords.npy"
        np.save(src, features, allow_pickle=False)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent),
                                                                         os.environ.get("PYTHONPATH")])))
        proc = subprocess.run([sys.executable, "-m", "ptm_core.maps.projection", str(src), str(out),
                               json.dumps(config.to_dict())], env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            log.warning("t-SNE worker exited with %s: %s", proc.returncode, proc.stderr[-2000:])
            how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
            raise PTMError(f"t-SNE crashed in its worker process ({how}; the app is unaffected); "
                           f"try UMAP or PCA, or another perplexity.")
        return np.load(out, allow_pickle=False)


def _tsne_worker(argv: list[str]) -> None:
    src, out, config = argv
    fields = json.loads(config)
    np.save(out, _tsne(np.load(src, allow_pickle=False), ProjectionConfig(**fields)), allow_pickle=False)


def _tsne(features: np.ndarray, config: ProjectionConfig) -> np.ndarray:
    # sklearn needs perplexity < n; a third of n keeps the neighbourhoods meaningful on tiny sets.
    perplexity = max(1.0, min(config.perplexity, (len(features) - 1) / 3))
    tsne = TSNE(n_components=config.n_components, perplexity=perplexity, init="pca", metric=config.metric,
                random_state=config.seed, n_jobs=None if config.reproducible else -1)
    if not config.reproducible:
        return tsne.fit_transform(features)
    # One OpenMP thread: on a busy 2-core box sklearn's threaded Barnes-Hut gradient ran 20x slower
    # (12 s vs 0.6 s for 200 x 1280 real features) from threads waiting on each other.
    with threadpool_limits(1, user_api="openmp"):
        return tsne.fit_transform(features)


def _as_input(x: np.ndarray) -> np.ndarray:
    # numba specialises on dtype and layout: float32 C-order is what compile_umap() compiles for.
    return np.ascontiguousarray(x, dtype=np.float32)


def _fit(fit_x: np.ndarray, config: ProjectionConfig, n_rest: int) -> tuple[np.ndarray, Callable]:
    """Map coordinates of the fitted points, and the function that places further points on that map."""
    if config.method == "tsne":
        fit_coords = _tsne_isolated(fit_x, config)
        knn = NearestNeighbors(n_neighbors=min(PLACE_K, len(fit_x)), metric=config.metric).fit(fit_x)
        return fit_coords, lambda x: fit_coords[knn.kneighbors(x, return_distance=False)].mean(axis=1)
    if config.method == "pca":
        model = PCA(n_components=min(config.n_components, *fit_x.shape), random_state=config.seed).fit(fit_x)
        return model.transform(fit_x), model.transform
    model = _fit_umap(fit_x, config, exact=exact_graph(config, len(fit_x), n_rest))
    _warm_done.set()  # compiled now, whether or not the warm-up ran
    _compiled_paths.add(_umap_path(config))
    return model.embedding_, model.transform


def fitted_mask(n: int, config: ProjectionConfig) -> np.ndarray:
    """True for the points a map of n points is fitted on, False for those placed afterwards (seeded)."""
    limit = fit_limit(config)
    if limit is None or n <= limit:
        return np.ones(n, dtype=bool)
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(config.seed).choice(n, size=limit, replace=False)] = True
    return mask


def place_chunks(rows: np.ndarray) -> list[np.ndarray]:
    """The rows to place, in steps of about PLACE_CHUNK: fixed by their number, so a map stays the same map."""
    return np.array_split(rows, max(1, math.ceil(len(rows) / PLACE_CHUNK)))


def _check_finite(features: np.ndarray) -> None:
    # A chunk at a time: np.isfinite of 1M x 1280 at once is a 1.3 GB temporary.
    for rows in place_chunks(np.arange(len(features))):
        if not np.isfinite(features[rows[0]:rows[-1] + 1]).all():
            raise PTMError("The features contain NaN or infinite values; a map cannot be drawn. Extract them again.")


def _compute(features: np.ndarray, config: ProjectionConfig, progress: Callable[[int, int], None] | None = None,
             cancelled: Callable[[], bool] | None = None) -> tuple[np.ndarray, dict]:
    """Fit on the seeded sample, then place the rest a chunk at a time (progress(done, total) after each).

    Chunks, not one `transform` of everything: the job can say how far placing has got and stop between
    chunks, and the rows are read, pre-reduced and placed a chunk at a time (no copy of a 5 GB set).
    """
    validate(config, len(features))
    n = len(features)
    fit = fitted_mask(n, config)
    fit_x = _as_input(features[fit])
    check_degenerate(fit_x, config.n_components)  # as the methods will see them: float32
    rest = np.flatnonzero(~fit)
    if len(rest):
        _check_finite(features)
    reduce = lambda x: x  # noqa: E731
    if config.pca_dims is not None and config.method != "pca" and config.pca_dims < min(fit_x.shape):
        reduce = PCA(n_components=config.pca_dims, random_state=config.seed).fit(fit_x).transform
        fit_x = _as_input(reduce(fit_x))
    fit_coords, place = _fit(fit_x, config, len(rest))
    coords = np.zeros((n, config.n_components), dtype=np.float32)
    width = fit_coords.shape[1]
    coords[fit, :width] = fit_coords
    done = 0
    if progress is not None and len(rest):
        progress(0, len(rest))
    for rows in place_chunks(rest) if len(rest) else []:
        if cancelled is not None and cancelled():
            raise Cancelled()
        coords[rows, :width] = place(_as_input(reduce(_as_input(features[rows]))))
        if config.method == "umap":
            _transform_compiled.set()
        done += len(rows)
        if progress is not None:
            progress(done, len(rest))
    placement = "fit" if not len(rest) else ("knn-mean" if config.method == "tsne" else "transform")
    return coords, {"subsampled": bool(len(rest)), "n_fit": int(fit.sum()), "n_points": n, "placement": placement}


def compute_projection(features: np.ndarray, config: ProjectionConfig) -> np.ndarray:
    """N x n_components float32 coordinates (no cache)."""
    return _compute(features, config)[0]


def projection_path(feature_key: str, config: ProjectionConfig):
    return artifact_dir("projections") / f"{stable_hash([feature_key, config.key()])}.npz"


def project(features: np.ndarray, feature_key: str, config: ProjectionConfig,
            progress: Callable[[int, int], None] | None = None,
            cancelled: Callable[[], bool] | None = None) -> tuple[np.ndarray, dict]:
    """Coordinates (N x n_components) and meta; a map computed before is read back from disk.

    meta: method, n_components, seconds, config, subsampled, n_fit, n_points, placement, cache_hit.
    `progress(done, total)` follows the placing of points beyond the fit sample; `cancelled()` is
    asked between chunks (raises Cancelled).
    """
    path = projection_path(feature_key, config)
    cached = load_npz(path)
    if cached is not None and cached[0]["coords"].shape == (len(features), config.n_components):
        return cached[0]["coords"], dict(cached[1], cache_hit=True)
    started = time.perf_counter()
    coords, info = _compute(features, config, progress, cancelled)
    meta = {"method": config.method, "n_components": config.n_components, "seconds": time.perf_counter() - started,
            "config": config.to_dict(), **info}
    save_npz(path, meta=meta, coords=coords)
    return coords, dict(meta, cache_hit=False)


def umap_ready() -> bool:
    """True once this process has compiled UMAP's default path (by compile_umap(), the app's warm-up job, or a
    real map)."""
    return _warm_done.is_set()


def warm_up_umap() -> threading.Thread:
    """compile_umap() on a background thread, once per process (the benchmarks' and scripts' warm-up; the app
    runs compile_umap() as a job of its map lane instead, pages/ui/services.py).

    A real first call then costs only its own compute. numba's on-disk cache does not remove the
    compilation for a fresh process: only pynndescent's `cache=True` kernels are cached (already, in
    site-packages/__pycache__), and forcing cache=True on every umap/pynndescent kernel saved little, as
    the NN-descent and layout kernels are built from closures over the metric and numba does not cache
    those. What did cut it: not running NN-descent at all for whole-set fits (EXACT_KNN_METRICS). The
    first map's cost: the "First UMAP in a fresh process" row of benchmarks/RESULTS.md
    (benchmarks/first_umap.py; its --detail separates the compile, cold vs warm), and the estimate's
    share for it: maps.estimate.UMAP_COMPILE_SECONDS.
    """
    thread = threading.Thread(target=compile_umap, name="umap-warm-up", daemon=True)
    thread.start()
    return thread


def compile_umap() -> None:
    """The warm-up itself, on the calling thread (the app runs it as the first job of the map lane).

    It shares the map lane with real maps (one UMAP at a time: numba's workqueue layer is not
    thread-safe). It holds the GIL for most of its run, so work on the compute lane beside it slows down
    on 2 cores; the app's warm-up job waits for the compute lane first (JobManager.yield_to).
    """
    if _warm.is_set():
        return
    _warm.set()
    sample = _as_input(np.random.default_rng(0).normal(size=(300, 16)))
    # Most likely first: a map of every point on the exact kNN graph (the whole set up to FIT_MAX).
    _umap(sample, ProjectionConfig(), exact=True)
    _compiled_paths.add(_umap_path(ProjectionConfig()))
    _warm_done.set()
    # Nearest-neighbour descent (sets beyond EXACT_KNN_MAX, other metrics) is not compiled ahead: its
    # compilation (several times the default path's, maps.estimate.UMAP_DESCENT_COMPILE_SECONDS) holds
    # the GIL and slowed a job started beside it severalfold (the tour's first step after a cold start).
    # estimate_seconds() adds it before such a first map.


if __name__ == "__main__":  # the t-SNE worker: python -m ptm_core.maps.projection IN.npy OUT.npy CONFIG_JSON
    _tsne_worker(sys.argv[1:])

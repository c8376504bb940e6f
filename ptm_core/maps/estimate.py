"""How long a map will take, before it runs: the time model behind every map's estimate and progress bar.

Kept apart from `projection` (the maps themselves); it reads which UMAP kernels this process has
compiled from there, since a first map pays numba's compilation on top of its own work.
"""
from __future__ import annotations

import math
import os

from ptm_core.maps import projection
from ptm_core.base.configs import ProjectionConfig

# Time model, measured by benchmarks/calibrate_estimate.py on the shared 2-core dev box (real mnist5k
# x 1280 features, load average ~3; expect +-50%). Seconds = fixed cost + per-unit costs, each unit a
# product of sizes. E.g. UMAP 5000 x 1280 seeded: 1.0 + 0.77 (kNN) + 4.1 (layout) = 5.9 s; measured 6.0.
PCA_BASE_SECONDS = 0.3  # a cold process's first PCA (BLAS start-up) measured 0.43 s for 5000 x 1280
PCA_SECONDS_PER_CELL = 2.2e-8  # n * dim, randomized-SVD PCA
UMAP_BASE_SECONDS = 1.0
UMAP_KNN_SECONDS_PER_CELL = 1.2e-7  # n * dim, nearest-neighbour descent (exact kNN below 1000 is as cheap)
# n^2 * dim, the exact kNN graph of a whole-set fit: 5000 x 1280 took 0.8 s more than NN-descent's (3.4 vs 2.6
# CPU seconds for the whole warm map, same process, load ~7).
EXACT_KNN_SECONDS_PER_CELL = 3e-11
UMAP_LAYOUT_SECONDS_PER_EDGE_EPOCH = 1.1e-7  # n * n_neighbors * epochs, single-threaded SGD
# Placing points beyond fit_max: a kNN query per point (n_rest * dim) and a layout step per point, whatever
# its dims. 3000 x 1280 measured 2.7e-6 s per cell all told; 80,000 x 50 (benchmarks/large_map.py, chunks
# of 20,000 after a 20,000 fit, load ~2.5) 9.1e-6 per cell, i.e. 0.46 ms per point: the two give these.
UMAP_TRANSFORM_SECONDS_PER_CELL = 2.5e-6  # n_rest * dim
UMAP_TRANSFORM_SECONDS_PER_POINT = 3.4e-4  # n_rest
# numba compilation on a process's first UMAP call (see warm_up_umap): ~7 CPU seconds on the exact kNN
# graph (cold 9.9 vs warm 2.5 for 5000 x 1280), where nearest-neighbour descent's kernels took ~40.
UMAP_COMPILE_SECONDS = 8.0
UMAP_DESCENT_COMPILE_SECONDS = 30.0  # NN-descent, compiled on first use (~38 CPU s measured, shared box)
UMAP_TRANSFORM_COMPILE_SECONDS = 4.0  # a process's first transform: its first 20k chunk took 13.3 s vs 9.1 after
UMAP_VARIANT_COMPILE_SECONDS = 10.0  # a further metric or the parallel layout: cosine's first map 15.8 s vs 6.0 warm
TSNE_BASE_SECONDS = 0.1
# t-SNE runs in a child process (a native crash must not take the server down): interpreter start plus
# numpy/sklearn imports; 40 points took 3.8 s end to end on the shared 2-core box, nearly all of it this.
TSNE_WORKER_START_SECONDS = 3.0
TSNE_KNN_SECONDS_PER_CELL = 1.0e-7  # n * dim, 3*perplexity nearest neighbours
TSNE_SECONDS_PER_POINT_LOG = 4.2e-4  # n * log2(n), 1000 Barnes-Hut iterations
BRUTE_KNN_SECONDS_PER_CELL = 1.0e-9  # n_rest * n_fit * dim, t-SNE placement (not measured: BLAS-bound guess)


def _parallel_speedup() -> float:
    # Unseeded parallel UMAP of 5000 x 1280 took 10 s vs 5.9 s seeded on the shared 2-core box (0.6x:
    # thread overhead, no spare core). Beyond 2 cores, linear in cores/2 up to 16 is a guess, not measured.
    return 0.6 * max(1.0, min(os.cpu_count() or 1, 16) / 2)


def _sizes(n: int, dim: int, config: ProjectionConfig) -> tuple[int, int, int]:
    """(points fitted, points placed afterwards, dims the method sees after any PCA pre-reduction)."""
    limit = projection.fit_limit(config)
    n_fit = n if limit is None else min(n, limit)
    reduced = config.method != "pca" and config.pca_dims is not None and config.pca_dims < dim
    return n_fit, n - n_fit, config.pca_dims if reduced else dim


def place_seconds(n: int, dim: int, config: ProjectionConfig) -> float:
    """The part of `estimate_seconds` that places the points beyond the fit sample (0 when all are fitted).

    The job's progress bar gives the fit this estimate's complement, then moves by placed chunks.
    """
    n_fit, n_rest, reduced = _sizes(n, dim, config)
    if config.method == "pca":
        return PCA_SECONDS_PER_CELL * n_rest * dim
    seconds = PCA_SECONDS_PER_CELL * n_rest * dim if reduced < dim else 0.0  # pre-reducing the placed points
    if config.method == "tsne":
        return seconds + BRUTE_KNN_SECONDS_PER_CELL * n_rest * n_fit * reduced
    return seconds + (UMAP_TRANSFORM_SECONDS_PER_POINT + UMAP_TRANSFORM_SECONDS_PER_CELL * reduced) * n_rest


def estimate_seconds(n: int, dim: int, config: ProjectionConfig, include_compile: bool = True) -> float:
    """Rough wall time of `compute_projection` on n x dim features, before running it.

    `include_compile` adds UMAP's one-off numba compilation while this process has not paid it yet.
    """
    n_fit, n_rest, reduced = _sizes(n, dim, config)
    if config.method == "pca":
        return PCA_BASE_SECONDS + PCA_SECONDS_PER_CELL * n_fit * dim + place_seconds(n, dim, config)
    seconds = place_seconds(n, dim, config)
    if reduced < dim:
        seconds += PCA_SECONDS_PER_CELL * n_fit * dim
    dim = reduced
    if config.method == "tsne":
        seconds += TSNE_BASE_SECONDS + TSNE_WORKER_START_SECONDS + TSNE_KNN_SECONDS_PER_CELL * n_fit * dim
        return seconds + TSNE_SECONDS_PER_POINT_LOG * n_fit * math.log2(max(n_fit, 2))
    epochs = config.n_epochs or (500 if n_fit <= 10_000 else 200)  # None: umap-learn's own default
    exact = projection.exact_graph(config, n_fit, n_rest)
    work = (EXACT_KNN_SECONDS_PER_CELL * n_fit if exact else UMAP_KNN_SECONDS_PER_CELL) * n_fit * dim
    work += UMAP_LAYOUT_SECONDS_PER_EDGE_EPOCH * n_fit * config.n_neighbors * epochs
    seconds += UMAP_BASE_SECONDS + (work if config.reproducible else work / _parallel_speedup())
    if include_compile and not projection.umap_ready():
        seconds += UMAP_COMPILE_SECONDS
    elif include_compile and not projection.variant_compiled(config):
        seconds += UMAP_VARIANT_COMPILE_SECONDS
    if include_compile and not exact and not projection.descent_compiled():
        seconds += UMAP_DESCENT_COMPILE_SECONDS
    if include_compile and n_rest and not projection.transform_compiled():
        seconds += UMAP_TRANSFORM_COMPILE_SECONDS
    return seconds

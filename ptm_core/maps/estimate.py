"""How long a map will take, before it runs: the time model behind every map's estimate and progress bar.

Kept apart from `projection` (the maps themselves); it reads which UMAP kernels this process has
compiled from there, since a first map pays numba's compilation on top of its own work.
"""
from __future__ import annotations

import math
import os

from ptm_core.maps import projection
from ptm_core.base.configs import ProjectionConfig

# Time model: seconds = fixed cost + per-unit costs, each unit a product of sizes. The per-unit constants were
# measured on the shared 2-core dev box (real mnist5k x 1280 features); benchmarks/calibrate_estimate.py
# measures the main ones again and prints each beside the value here. How close whole estimates come: the
# large-map rows of benchmarks/RESULTS.md (target within +-50 %).
PCA_BASE_SECONDS = 0.3  # a cold process's first PCA pays BLAS's start-up
PCA_SECONDS_PER_CELL = 2.2e-8  # n * dim, randomized-SVD PCA
UMAP_BASE_SECONDS = 1.0
UMAP_KNN_SECONDS_PER_CELL = 1.2e-7  # n * dim, nearest-neighbour descent (exact kNN below 1000 is as cheap)
# n^2 * dim, the exact kNN graph of a whole-set fit (projection.EXACT_KNN_METRICS): dearer than NN-descent's
# once both are compiled, and growing with n^2.
EXACT_KNN_SECONDS_PER_CELL = 3e-11
UMAP_LAYOUT_SECONDS_PER_EDGE_EPOCH = 1.1e-7  # n * n_neighbors * epochs, single-threaded SGD
# Placing points beyond fit_max: a kNN query per point (n_rest * dim) and a layout step per point, whatever
# its dims. Fitted to a high-dim placement (3000 x 1280) and a low-dim one (benchmarks/large_map.py, chunks of
# 20,000 after a 20,000 fit; its steady ms per point is in the large-map rows of benchmarks/RESULTS.md).
UMAP_TRANSFORM_SECONDS_PER_CELL = 2.5e-6  # n_rest * dim
UMAP_TRANSFORM_SECONDS_PER_POINT = 3.4e-4  # n_rest
# numba compilation on a process's first UMAP call, which the app pays ahead (projection.compile_umap, its
# map lane's warm-up job): a cold map minus a warm one, `python benchmarks/first_umap.py --detail`; the whole
# first map: the "First UMAP in a fresh process" row of benchmarks/RESULTS.md. Nearest-neighbour descent's
# kernels take several times the exact-kNN default path's.
UMAP_COMPILE_SECONDS = 8.0
UMAP_DESCENT_COMPILE_SECONDS = 30.0  # NN-descent, compiled on first use (not ahead: projection.compile_umap)
UMAP_TRANSFORM_COMPILE_SECONDS = 4.0  # a process's first transform: its first placed chunk against the steady ones
UMAP_VARIANT_COMPILE_SECONDS = 10.0  # a further metric or the parallel layout: a first map of it vs a warm one
TSNE_BASE_SECONDS = 0.1
# t-SNE runs in a child process (a native crash must not take the server down): interpreter start plus
# numpy/sklearn imports, nearly all of a small t-SNE's time end to end.
TSNE_WORKER_START_SECONDS = 3.0
TSNE_KNN_SECONDS_PER_CELL = 1.0e-7  # n * dim, 3*perplexity nearest neighbours
TSNE_SECONDS_PER_POINT_LOG = 4.2e-4  # n * log2(n), 1000 Barnes-Hut iterations
# 3-D Barnes-Hut walks an octree, not a quadtree: many more cells per gradient step, so 2-D's cost does not carry
# over (issue 23: a 3-D map estimated at 30 s took 88 s). Fitted on its own: the 3-D / 2-D ratio of summed t-SNE
# time (worker start taken off) on the same digits features, 2-D and 3-D interleaved so both saw the same load
# (benchmarks/tsne_3d.py: 4.8 and 4.0 in two runs, the t-SNE 3-D rows of benchmarks/RESULTS.md), times the 2-D
# constant. The box was loaded (load average 10-24), which slowed both alike; their ratio is what carries over.
TSNE_3D_SECONDS_PER_POINT_LOG = 4.2e-4 * 4.5  # 1.9e-3
BRUTE_KNN_SECONDS_PER_CELL = 1.0e-9  # n_rest * n_fit * dim, t-SNE placement (not measured: BLAS-bound guess)


def _parallel_speedup() -> float:
    # Unseeded parallel UMAP ran slower than the seeded single-threaded one on the shared 2-core box (0.6x:
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
        per_point = TSNE_3D_SECONDS_PER_POINT_LOG if config.n_components == 3 else TSNE_SECONDS_PER_POINT_LOG
        return seconds + per_point * n_fit * math.log2(max(n_fit, 2))
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


# The progress of a call that reports none (UMAP's and t-SNE's fits) follows elapsed / estimate up to this share;
# past it the bar keeps moving, ever more slowly, instead of sitting at the estimate's end: an estimate is a guess
# (a loaded machine runs several times slower), and a bar that stops looks like a hang.
LINEAR_SHARE = 0.8


def estimate_fraction(elapsed: float, estimate: float) -> float:
    """The share of a call done after `elapsed` seconds of an `estimate`: linear up to LINEAR_SHARE, then the rest
    approached exponentially with a time constant of the whole estimate (0.84 at the estimate, 0.94 at twice it,
    0.97 at three times), never 1: only the call's end says it is done."""
    estimate = max(estimate, 0.1)
    if elapsed <= LINEAR_SHARE * estimate:
        return max(elapsed, 0.0) / estimate
    return 1.0 - (1.0 - LINEAR_SHARE) * math.exp(-(elapsed - LINEAR_SHARE * estimate) / estimate)

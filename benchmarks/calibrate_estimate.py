"""Measure the constants of ptm_core.maps.estimate.estimate_seconds on this machine.

    python benchmarks/calibrate_estimate.py [--features path.npz]

Each constant comes from a difference of two timed runs that differ in one size only, so the
fixed costs cancel (a least-squares fit over few noisy points gave negative terms on a loaded
2-core box). UMAP (including its transform path) is compiled first, so compilation is not counted;
estimate_seconds adds UMAP_COMPILE_SECONDS on its own. Takes about 3 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _features import load_features

from ptm_core.maps import projection

from ptm_core.maps import estimate as projection_estimate
from ptm_core.base.configs import ProjectionConfig


def timed(features: np.ndarray, config: ProjectionConfig | None = None) -> float:
    started = time.perf_counter()
    projection.compute_projection(features, config or ProjectionConfig())
    return time.perf_counter() - started


def show(name: str, value: float) -> None:
    print(f"  {name} = {value:.3g}   (in projection_estimate.py: {getattr(projection_estimate, name):.3g})")


def calibrate_umap(x: np.ndarray) -> None:
    nnd_wide, nnd_narrow = timed(x[:5000]), timed(x[:5000, :128])
    small = timed(x[:1000, :128])
    print(f"umap (NN-descent) 5000x1280 {nnd_wide:.2f} s, 5000x128 {nnd_narrow:.2f} s, 1000x128 {small:.2f} s")
    show("UMAP_KNN_SECONDS_PER_CELL", (nnd_wide - nnd_narrow) / (5000 * 1152))
    layout = (nnd_narrow - small) / ((5000 - 1000) * 15 * 500)
    show("UMAP_LAYOUT_SECONDS_PER_EDGE_EPOCH", layout)
    show("UMAP_BASE_SECONDS", small - layout * 1000 * 15 * 500)
    timed(x[:200], ProjectionConfig(fit_max=100))  # compiles the transform path
    fit_only, with_rest = timed(x[:2000]), timed(x[:5000], ProjectionConfig(fit_max=2000))
    show("UMAP_TRANSFORM_SECONDS_PER_CELL", (with_rest - fit_only) / (3000 * x.shape[1]))


def calibrate_tsne(x: np.ndarray) -> None:
    tiny, wide, narrow = (timed(x[:n, :d], ProjectionConfig(method="tsne")) for n, d in
                          ((200, 1280), (2000, 1280), (2000, 128)))
    print(f"tsne 200x1280 {tiny:.2f} s, 2000x1280 {wide:.2f} s, 2000x128 {narrow:.2f} s")
    knn = (wide - narrow) / (2000 * 1152)
    show("TSNE_KNN_SECONDS_PER_CELL", knn)
    per_point = (narrow - tiny) / (2000 * math.log2(2000) - 200 * math.log2(200))
    show("TSNE_SECONDS_PER_POINT_LOG", per_point)
    show("TSNE_BASE_SECONDS", tiny - per_point * 200 * math.log2(200))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--features")
    args = parser.parse_args()
    x, source = load_features(path=args.features)
    print(f"features: {source}")
    projection.warm_up_umap().join()
    timed(x, ProjectionConfig(method="pca"))
    show("PCA_SECONDS_PER_CELL", timed(x, ProjectionConfig(method="pca")) / x.size)
    calibrate_umap(x)
    calibrate_tsne(x)


if __name__ == "__main__":
    main()

"""t-SNE 2-D vs 3-D wall time against ptm_core.maps.estimate's estimate, on real digits features.

    python benchmarks/tsne_3d.py [--features path.npz] [--sizes 500,1000,1797]

Barnes-Hut t-SNE in 3-D walks an octree instead of a quadtree: each gradient step visits many more cells, so the
2-D cost per point does not carry over (issue 23: a 3-D map estimated at "about 30 s" took 88 s). Without
--features, digits (1,797 images) is extracted first by the CLI (bundled tf_efficientnet_lite0 at 64 px: 1,280
features). Each row runs the app's own path (compute_projection: the t-SNE worker process, one OpenMP thread).
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ptm_core.base.configs import ProjectionConfig
from ptm_core.maps import estimate, projection


def digits_features(folder: str) -> np.ndarray:
    out = str(Path(folder) / "digits-lite0-64.npz")
    subprocess.run([sys.executable, "-m", "ptm_core", "--data-dir", str(Path(folder) / "data"), "extract",
                    "--backbone", "tf_efficientnet_lite0", "--weights", "bundled", "--dataset", "digits",
                    "--image-size", "64", "--out", out], cwd=Path(__file__).resolve().parent.parent, check=True,
                   capture_output=True)
    with np.load(out) as data:
        return np.ascontiguousarray(data["features"], dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--features")
    parser.add_argument("--sizes", default="500,1000,1797")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.features:
            with np.load(args.features) as data:
                x = np.ascontiguousarray(data["features"], dtype=np.float32)
        else:
            x = digits_features(tmp)
    print(f"features {x.shape}, load {os.getloadavg()[0]:.2f}")
    for n in (int(s) for s in args.sizes.split(",")):
        for dims in (2, 3):
            config = ProjectionConfig(method="tsne", n_components=dims)
            guess = estimate.estimate_seconds(n, x.shape[1], config)
            started = time.perf_counter()
            projection.compute_projection(x[:n], config)
            took = time.perf_counter() - started
            per = (took - estimate.TSNE_WORKER_START_SECONDS) / (n * math.log2(n))
            print(f"n={n} {dims}-D: {took:.1f} s, estimate {guess:.1f} s, per n*log2(n) {per:.3g}, "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()

"""Ray engine scaling on this machine: the local engine vs `--engine ray` with 1 and 2 workers.

One local Ray instance serves every run; each run gets a fresh cache folder so nothing is a cache hit.
Prints, per run, the wall images/s (worker start-up included), the start-up seconds (until the first
batch came back), the images/s after that, and the largest cosine deviation from the local features. Usage:

    python benchmarks/ray_scaling.py [--n 400] [--size 128] [--workers 1 2]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ptm_core.base.configs import BackboneConfig, DatasetConfig, ExtractionConfig  # noqa: E402
from ptm_core.features.extraction import extract  # noqa: E402
from ptm_core.features.ray_cluster import start_ray  # noqa: E402
from ptm_core.features.ray_engine import RayOptions, extract_ray  # noqa: E402


def _cosine_gap(a: np.ndarray, b: np.ndarray) -> float:
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(1.0 - cos.min())


def _timed(run) -> tuple[object, float]:
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    configs = (DatasetConfig("mnist5k", args.n), BackboneConfig("tf_efficientnet_lite0", "bundled"),
               ExtractionConfig(args.size, 32, "cpu"))
    threads = torch.get_num_threads()
    for n_threads in (threads, 1):  # 1: as each Ray actor here runs; on a busy box extra threads can hurt
        torch.set_num_threads(n_threads)
        os.environ["PTM_DATA_DIR"] = tempfile.mkdtemp(prefix="ptm-ray-bench-")
        local, wall = _timed(lambda: extract(*configs))
        print(f"local engine, {n_threads} torch thread(s): {args.n / wall:.1f} img/s wall (model load included), "
              f"{local.meta['images_per_s']:.1f} img/s compute")
    torch.set_num_threads(threads)
    start_ray(None)
    for workers in args.workers:
        os.environ["PTM_DATA_DIR"] = tempfile.mkdtemp(prefix="ptm-ray-bench-")
        result, wall = _timed(lambda: extract_ray(*configs, RayOptions(workers=workers)))
        startup, compute = result.meta["startup_seconds"], result.meta["compute_seconds"]
        print(f"ray, {workers} worker(s): {args.n / wall:.1f} img/s wall, start-up {startup:.1f} s, "
              f"{args.n / max(compute - startup, 1e-9):.1f} img/s after start-up (first batch excluded), "
              f"max cosine deviation {_cosine_gap(result.features, local.features):.2e}")


if __name__ == "__main__":
    main()

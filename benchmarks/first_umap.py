"""First-UMAP latency: cold process vs background warm-up vs cache hit, each in a fresh subprocess.

    python benchmarks/first_umap.py [--delay 60] [--features path.npz]

(a) cold: a new process's first `project()` UMAP of 5k x 1280 features (numba compiles inside the call);
(b) warm: `warm_up_umap()` starts at process start, as the server does, and the same call is made
    --delay seconds later; (c) revisit: `project()` again on the same data dir (cache hit), in a fresh
process and a second time inside the cold process; (d) "server started this instant": the warm-up
starts and a PCA map is asked for at once (it runs beside the compile, as the app's page does),
then the UMAP that replaces it (queued behind the compile, as in the app's map lane). Uses cached
real mnist5k features when present, else seeded random 5000 x 1280.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def child(mode: str, delay: float, features_path: str | None) -> dict:
    started = time.perf_counter()
    from ptm_core import projection
    from ptm_core.configs import ProjectionConfig

    if mode in ("warm", "instant"):
        warm_up = projection.warm_up_umap()
    from _features import load_features

    features, source = load_features(path=features_path)
    if mode == "warm":
        time.sleep(max(0.0, delay - (time.perf_counter() - started)))
    if mode == "instant":
        return instant(projection, features, source, warm_up, started)
    config = ProjectionConfig()
    result = {"mode": mode, "source": source, "umap_ready_before_call": projection.umap_ready(),
              "estimate_s": projection.estimate_seconds(len(features), features.shape[1], config)}
    t0 = time.perf_counter()
    _, meta = projection.project(features, "bench-features", config)
    result.update(seconds=time.perf_counter() - t0, cache_hit=meta["cache_hit"])
    if mode == "cold":
        t0 = time.perf_counter()
        _, meta = projection.project(features, "bench-features", config)
        result.update(second_call_seconds=time.perf_counter() - t0, second_call_cache_hit=meta["cache_hit"])
    return result


def instant(projection, features, source: str, warm_up, started: float) -> dict:
    from ptm_core.configs import ProjectionConfig

    t0 = time.perf_counter()
    projection.project(features, "bench-features", ProjectionConfig(method="pca"))
    pca_seconds = time.perf_counter() - t0
    warm_up.join()  # the map lane runs the compile first, then the UMAP
    projection.project(features, "bench-features", ProjectionConfig())
    return {"mode": "instant", "source": source, "pca_seconds": pca_seconds,
            "umap_after_start_seconds": time.perf_counter() - started}


def run_child(mode: str, data_dir: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--delay", str(args.delay)]
    if args.features:
        command += ["--features", args.features]
    env = dict(os.environ, PTM_DATA_DIR=data_dir)
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=60.0, help="seconds between warm-up start and the call")
    parser.add_argument("--features", help="npz with a `features` array (default: cached mnist5k, else random)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.delay, args.features)))
        return
    with tempfile.TemporaryDirectory() as cold_dir, tempfile.TemporaryDirectory() as warm_dir, \
            tempfile.TemporaryDirectory() as instant_dir:
        cold = run_child("cold", cold_dir, args)
        warm = run_child("warm", warm_dir, args)
        revisit = run_child("revisit", cold_dir, args)  # cold_dir already holds the map
        instant = run_child("instant", instant_dir, args)
    print(f"features: {cold['source']}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"(a) cold first UMAP            {cold['seconds']:7.2f} s  (estimate {cold['estimate_s']:.1f} s)")
    print(f"(b) after warm-up (+{args.delay:.0f} s)      {warm['seconds']:7.2f} s  "
          f"(warm-up finished before the call: {warm['umap_ready_before_call']}; estimate {warm['estimate_s']:.1f} s)")
    print(f"(c) revisit, fresh process     {revisit['seconds']:7.3f} s  (cache hit: {revisit['cache_hit']})")
    print(f"    revisit, same process      {cold['second_call_seconds']:7.3f} s  (cache hit: {cold['second_call_cache_hit']})")
    print(f"(d) fresh server: PCA map      {instant['pca_seconds']:7.2f} s  (beside the compile); the UMAP "
          f"replaces it {instant['umap_after_start_seconds']:.1f} s after process start")
    print(f"ratios: cold/warm {cold['seconds'] / warm['seconds']:.1f}x, cold/revisit "
          f"{cold['seconds'] / revisit['seconds']:.0f}x, warm/revisit {warm['seconds'] / revisit['seconds']:.0f}x")


if __name__ == "__main__":
    main()

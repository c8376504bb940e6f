"""The leaderboard's wall time as a user meets it: `python -m ptm_core bench` on digits (1,797 images) at 64 px with
every backbone whose weights are bundled here, each also with random init, three seeds; a fresh data folder (no
feature or probe cache), the process's start and model loading included. Target: within 10 minutes on 2 CPU cores.

Which backbones are bundled is asked of the weights loader itself: each candidate that loads with `--weights bundled`
offline is in (today tf_efficientnet_lite0; the zoo's names as they land).

    python benchmarks/bench_speed.py [--quick] [--backbones A,B]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The five offline backbones, by the timm names they are (to be) registered under.
CANDIDATES = ("tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2", "squeezenet1_1",
              "mobilenetv2_100")
TARGET_S = 600.0
SIZE, SEEDS = 64, 3


def bundled_backbones(candidates=CANDIDATES) -> list[str]:
    """The candidates whose bundled weights load here (the loader refuses the others, naming why)."""
    from ptm_core.base.configs import BackboneConfig
    from ptm_core.base.errors import PTMError
    from ptm_core.models.weights import load_backbone

    found = []
    for name in candidates:
        try:
            load_backbone(BackboneConfig(name, "bundled"))
        except PTMError:
            continue
        found.append(name)
    return found


def time_bench(backbones: list[str], limit: int | None, seeds: int) -> tuple[float, dict]:
    """Seconds of one `bench --include-random` in a fresh data folder, and its --json output."""
    with tempfile.TemporaryDirectory() as scratch:
        args = [sys.executable, "-m", "ptm_core", "bench", "--backbones", ",".join(backbones), "--weights", "bundled",
                "--include-random", "--dataset", "digits", "--image-size", str(SIZE), "--seeds", str(seeds),
                "--out", str(Path(scratch) / "board"), "--json"] + (["--limit", str(limit)] if limit else [])
        started = time.perf_counter()
        proc = subprocess.run(args, cwd=ROOT, env=dict(os.environ, PTM_DATA_DIR=str(Path(scratch) / "data")),
                              capture_output=True, text=True, timeout=3 * TARGET_S)
        seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}")
    return seconds, json.loads(proc.stdout)


def rows(quick: bool = False, backbones: list[str] | None = None) -> list[dict]:
    """One row: figure, ours (wall seconds), baseline (the target), ratio (target / ours), target, met, note."""
    names = backbones or bundled_backbones()
    limit = 360 if quick else None
    load = os.getloadavg()[0]
    seconds, shown = time_bench(names, limit, SEEDS)
    board = "; ".join(f"{r['backbone']} ({r['weights']}) {r['linear_mean']:.1%} "
                      f"[{r['linear_ci_low']:.1%}, {r['linear_ci_high']:.1%}], {r['images_per_s']:.0f} img/s"
                      for r in shown["rows"])
    images = f"{limit} of 1,797" if limit else "1,797"
    return [{"figure": f"bench: {len(names)} bundled backbone(s) + random init, {SEEDS} seeds, digits {images} "
                       f"@{SIZE}px, fresh cache",
             "ours": f"{seconds:.0f} s", "baseline": f"{TARGET_S:.0f} s (target)", "ratio": TARGET_S / seconds,
             "target": "≤ 10 min", "met": seconds <= TARGET_S,
             "note": f"{shown['computed']} runs; load average {load:.1f} at the start; backbones: {', '.join(names)}; "
                     f"leaderboard: {board}"}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="360 of the images: a smoke run")
    parser.add_argument("--backbones", help="comma-separated (default: every bundled backbone found)")
    args = parser.parse_args()
    for row in rows(args.quick, args.backbones.split(",") if args.backbones else None):
        print(f"{row['figure']}: {row['ours']} (target {row['target']}: {'met' if row['met'] else 'NOT met'}) — "
              f"{row['note']}")


if __name__ == "__main__":
    main()

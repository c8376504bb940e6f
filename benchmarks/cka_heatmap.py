"""The lab's layer × layer CKA heatmap: linear CKA between every pair of 12 layers on 2,000 images, from features of
the dims a lite0-sized network's stages have (16 … 1280). Timed: the CKA matrix only (the stage features come from
the layer sweep's cache). Target: within 10 s on 2 CPU cores.

Ours: one centred n x n Gram matrix per layer, then all 78 pairs as one product (ptm_core.evals.similarity
layer_cka_matrix). Baseline: 78 separate feature-space CKAs (||Yᵀ X||² / (||Xᵀ X|| ||Yᵀ Y||)), each pair on its own.
The features are seeded random projections of one shared latent plus noise (the time does not depend on values).

    python benchmarks/cka_heatmap.py [--quick]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ptm_core.evals.similarity import cka, layer_cka_matrix  # noqa: E402

DIMS = (16, 24, 24, 40, 40, 80, 112, 112, 192, 320, 640, 1280)
TARGET_S = 10.0


def layers(n: int, dims=DIMS, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 64))
    return [(latent @ rng.normal(size=(64, d)) + rng.normal(size=(n, d))).astype(np.float32) for d in dims]


def best_of(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return min(times), out


def rows(quick: bool = False) -> list[dict]:
    n = 500 if quick else 2000
    feats, names = layers(n), [f"layer{i}" for i in range(len(DIMS))]
    load = os.getloadavg()[0]
    ours, matrix = best_of(lambda: layer_cka_matrix(feats, names), 1 if quick else 3)
    baseline, pairwise = best_of(lambda: [[cka(a, b).cka for b in feats[:i + 1]] for i, a in enumerate(feats)], 1)
    worst = max(abs(matrix.values[i, j] - v) for i, row in enumerate(pairwise) for j, v in enumerate(row))
    return [{"figure": f"CKA heatmap: {len(DIMS)} x {len(DIMS)} layers (dims {DIMS[0]}-{DIMS[-1]}), {n:,} images",
             "ours": f"{ours:.2f} s", "baseline": f"{baseline:.2f} s (78 feature-space CKAs)",
             "ratio": baseline / ours, "target": f"≤ {TARGET_S:.0f} s", "met": ours <= TARGET_S,
             "note": f"{matrix.method}, float64, best of {1 if quick else 3}; largest difference from the pairwise "
                     f"values {worst:.1e}; load average {load:.1f} at the start; "
                     f"`python benchmarks/run.py --only cka_heatmap`"}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 images, one repeat: a smoke run")
    for row in rows(parser.parse_args().quick):
        print(f"{row['figure']}: {row['ours']} vs {row['baseline']} (target {row['target']}: "
              f"{'met' if row['met'] else 'NOT met'}) — {row['note']}")


if __name__ == "__main__":
    main()

"""`--runtime auto --precision auto` against every explicit runtime x precision pair this machine runs, side by side.

Extraction: bundled tf_efficientnet_lite0 on N MNIST images; each pair into a fresh feature cache, alternating, the
best run of each counting (the OpenVINO model converted once beforehand, as the app keeps it; auto's calibration
measured once beforehand too, and its first run, calibration included, reported apart). Target: auto at least
0.9x the fastest explicit pair of the same run.

Accuracy: the linear probe (mean over 5 seeded splits) on MNIST-5k features of each pair at 128 px: `auto` may use
a runtime's bf16 only where its probe stays no more than 0.3 points below that runtime's fp32 (calibration.AUTO_BF16).
On a CPU without native bf16 only the fp32 pairs run (emulated bf16 would only measure its absence). The pairs are
every one this machine runs, whatever the gate says (an explicit --precision bf16 runs them all).

    python benchmarks/precision_paths.py [--n 1024] [--size 224] [--repeats 2] [--quick] [--no-accuracy]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _features import data_dir  # noqa: E402

from ptm_core.models.calibration import Pair  # noqa: E402
from ptm_core.base.capabilities import capabilities  # noqa: E402
from ptm_core.base.configs import BackboneConfig, DatasetConfig, ExtractionConfig, ProbeConfig  # noqa: E402
from ptm_core.features.extraction import FeatureSet, extract  # noqa: E402
from ptm_core.models.extraction_path import candidates  # noqa: E402
from ptm_core.probes.linear import run_linear_probe  # noqa: E402

AUTO_TARGET = 0.9
SEEDS = range(5)
GAP_TARGET_PT = 0.3
KEPT = ("openvino", "calibration")  # what a user's data directory keeps between runs: the IR, the measurement


def _explicit_pairs() -> list[Pair]:
    """Every pair this CPU runs natively (bf16 ones only where it has native bf16), whether or not auto may use it."""
    cpu = torch.device("cpu")
    precisions = ["fp32", "bf16"] if capabilities().native_bf16(cpu) else ["fp32"]
    return [pair for precision in precisions
            for pair in candidates(ExtractionConfig(precision=precision, runtime="auto", device="cpu"), cpu)]


def _timed(data: DatasetConfig, config: ExtractionConfig) -> tuple[float, FeatureSet]:
    start = time.perf_counter()
    result = extract(data, BackboneConfig(), config)
    return len(result.features) / (time.perf_counter() - start), result


def _fresh_run(data: DatasetConfig, config: ExtractionConfig, home: Path) -> tuple[float, FeatureSet]:
    """One extraction into a fresh feature cache that keeps `home`'s IR and calibration (as a user's does)."""
    with tempfile.TemporaryDirectory() as cache:
        for kept in KEPT:
            if (home / kept).exists():
                shutil.copytree(home / kept, Path(cache) / kept)
        with data_dir(Path(cache)):
            return _timed(data, config)


def speed(n: int, size: int, repeats: int) -> dict:
    data = DatasetConfig("mnist5k", limit=n)
    home = Path(tempfile.mkdtemp(prefix="ptm-bench-paths-"))
    configs = {p.name: ExtractionConfig(size, 64, "cpu", precision=p.precision, runtime=p.runtime)
               for p in _explicit_pairs()}
    configs["auto"] = ExtractionConfig(size, 64, "cpu", precision="auto", runtime="auto")
    with data_dir(home):
        if any(name.startswith("openvino") for name in configs):  # the one-off conversion, kept as the app keeps it
            extract(DatasetConfig("mnist5k", limit=10), BackboneConfig(),
                    ExtractionConfig(size, 10, "cpu", runtime="openvino", precision="fp32"))
        first_auto, first = _timed(data, configs["auto"])  # measures, and keeps the measurement in `home`
    rates: dict[str, list[float]] = {name: [] for name in configs}
    metas: dict[str, dict] = {}
    for _ in range(repeats):
        for name, config in configs.items():
            rate, result = _fresh_run(data, config, home)
            rates[name].append(rate)
            metas[name] = result.meta
    shutil.rmtree(home, ignore_errors=True)
    return {"best": {name: max(r) for name, r in rates.items()}, "metas": metas, "first_auto": first_auto,
            "first_meta": first.meta}


def accuracy(size: int, limit: int | None) -> dict[str, float]:
    """Mean probe test accuracy over SEEDS seeded splits on MNIST-5k features of each explicit pair (one cache for
    all: distinct keys). One split of 1,000 test images moves by ~0.5 points from seed to seed: the mean over the
    same splits for every pair is what the gate compares."""
    data = DatasetConfig("mnist5k", limit=limit)
    home = Path(tempfile.mkdtemp(prefix="ptm-bench-acc-"))
    out = {}
    with data_dir(home):
        for pair in _explicit_pairs():
            config = ExtractionConfig(size, 64, "cpu", precision=pair.precision, runtime=pair.runtime)
            features = extract(data, BackboneConfig(), config)
            out[pair.name] = float(np.mean([run_linear_probe(features.features, features.labels,
                                                             ProbeConfig(seed=seed)).test_accuracy for seed in SEEDS]))
    shutil.rmtree(home, ignore_errors=True)
    return out


def _speed_rows(m: dict, n: int, size: int) -> list[dict]:
    explicit = {k: v for k, v in m["best"].items() if k != "auto"}
    fastest = max(explicit, key=explicit.get)
    ratio = m["best"]["auto"] / explicit[fastest]
    listed = ", ".join(f"{k} {v:.1f}" for k, v in sorted(explicit.items(), key=lambda kv: -kv[1]))
    auto_meta = m["metas"]["auto"]
    figure = f"extraction, auto vs the fastest explicit runtime x precision, lite0 @{size}px, {n} MNIST images"
    loops = ", ".join(f"{k} {meta['images_per_s']:.1f}" for k, meta in m["metas"].items())
    return [{"figure": figure,
             "ours": f"auto {m['best']['auto']:.1f} img/s ({auto_meta['precision_label']})",
             "baseline": f"{fastest} {explicit[fastest]:.1f} img/s", "ratio": ratio, "target": f"≥ {AUTO_TARGET:g}×",
             "met": ratio >= AUTO_TARGET,
             "note": f"every pair, img/s (model and data loading included): {listed}; auto chose "
                     f"{auto_meta['path_choice']}; its first run, measuring included: {m['first_auto']:.1f} img/s; "
                     f"the extraction loops alone (last run of each, the engine's images_per_s): {loops}"}]


def _accuracy_rows(acc: dict[str, float], size: int, n_label: str) -> list[dict]:
    """One row per bf16 runtime: its probe against the same runtime's fp32 (they gate `auto`'s bf16 per runtime)."""
    listed = ", ".join(f"{k} {v:.2%}" for k, v in acc.items())
    out = []
    for runtime in ("torch", "openvino"):
        if f"{runtime} bf16" not in acc:
            continue
        bf16, fp32 = acc[f"{runtime} bf16"], acc[f"{runtime} fp32"]
        gap = 100 * (bf16 - fp32)
        out.append({"figure": f"bf16 probe accuracy vs fp32, {runtime}, lite0 @{size}px, {n_label}",
                    "ours": f"{bf16:.2%} ({runtime} bf16)", "baseline": f"{fp32:.2%} ({runtime} fp32)",
                    "ratio": bf16 / max(fp32, 1e-9), "target": f"no worse than fp32 - {GAP_TARGET_PT} pt",
                    "met": gap >= -GAP_TARGET_PT - 1e-9,
                    "note": f"gap {gap:+.2f} pt; mean over seeded splits {SEEDS.start}-{SEEDS.stop - 1} "
                            f"(ProbeConfig seed); all pairs: {listed}; gates `--precision auto`'s {runtime} bf16 "
                            f"(calibration.AUTO_BF16)"})
    return out


def rows(quick: bool = False, n: int | None = None, size: int = 224, repeats: int | None = None,
         with_accuracy: bool = True) -> list[dict]:
    """One dict per figure: figure, ours, baseline, ratio, target, met, note (run.py adds the CPU)."""
    n = n or (256 if quick else 1024)
    repeats = repeats or (1 if quick else 2)
    out = _speed_rows(speed(n, size, repeats), n, size)
    if with_accuracy:
        limit = 1000 if quick else None
        out += _accuracy_rows(accuracy(128, limit), 128, f"MNIST-5k{' (1,000)' if limit else ''}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=None, help="MNIST images for the speed row (default 1024)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-accuracy", action="store_true")
    args = parser.parse_args()
    print(capabilities().describe())
    for row in rows(args.quick, args.n, args.size, args.repeats, not args.no_accuracy):
        print(f"{row['figure']}: ours {row['ours']}, baseline {row['baseline']}, ratio {row['ratio']:.2f} "
              f"(target {row['target']}: {'met' if row['met'] else 'NOT met'}) — {row['note']}")


if __name__ == "__main__":
    main()

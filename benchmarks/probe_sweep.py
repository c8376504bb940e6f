"""Linear-probe C sweep: batched torch heads vs the plain sklearn protocol, in one run on the same features.

    python benchmarks/probe_sweep.py [--quick] [--features path.npz] [--repeats 2]

Both sides run LinearProbe's whole protocol on the train split (4,000 x 1,280 of mnist5k's 5,000 images
through tf_efficientnet_lite0, when cached; see _features.py): a C sweep on a stratified validation
split, then the refit at the best C on all 4,000, scored on the 1,000 test images. sklearn: one
StandardScaler + LogisticRegression Pipeline per C (today's protocol, 5 C values); ours: every C at
once as a batch of torch heads, the refit warm-started (5 and 9 C values). Runs alternate and the
fastest of each is kept, so load from other processes hits both alike. Both sides are warmed up first
on a small problem (torch's first call pays one-off set-up, as the server does once per process).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _features import load_labelled  # noqa: E402
from ptm_core.base.configs import PROBE_CS, ProbeConfig  # noqa: E402
from ptm_core.probes.linear import LinearProbe, split_indices  # noqa: E402

OLD_CS = (1e-3, 1e-2, 1e-1, 1.0, 10.0)  # the 5-value default before the torch sweep
MAX_ACCURACY_DROP = 0.003  # 0.3 points


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _run(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, Cs: tuple[float, ...],
         solver: str) -> dict:
    started, cpu = time.perf_counter(), _cpu_seconds()
    probe = LinearProbe(Cs, random_state=0, solver=solver, c_limits=None).fit(X[train], y[train])  # the grid timed, as is
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu": _cpu_seconds() - cpu, "accuracy": float(probe.score(X[test], y[test])), "best_C": probe.best_C_,
            "solver": probe.solver_}


def measure_one_thread(quick: bool = False, features: str | None = None) -> dict:
    """The 5-C comparison again with one thread each: what each solver's arithmetic costs, apart from how
    its threads fare. On a shared box sklearn's threaded lbfgs loses far more to other processes' load."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            return measure(quick, features, repeats=1, nine=False)
    finally:
        torch.set_num_threads(threads)


def measure(quick: bool = False, features: str | None = None, repeats: int | None = None, nine: bool = True) -> dict:
    X, y, source = load_labelled(path=features)
    if quick:  # a smaller slice of the same features: the same comparison in a few seconds
        keep = np.sort(np.random.default_rng(0).choice(len(X), size=1500, replace=False))
        X, y = X[keep], y[keep]
    train, test = split_indices(y, ProbeConfig().test_size, seed=0)
    small = np.arange(0, len(train), 8)
    for solver in ("sklearn", "torch"):  # warm-up: imports, thread pools, torch's first-call set-up
        LinearProbe((1.0,), solver=solver).fit(X[train][small], y[train][small])
    runs: dict[str, list[dict]] = {"sklearn5": [], "torch5": [], **({"torch9": []} if nine else {})}
    for _ in range(repeats or (1 if quick else 2)):
        runs["sklearn5"].append(_run(X, y, train, test, OLD_CS, "sklearn"))
        runs["torch5"].append(_run(X, y, train, test, OLD_CS, "torch"))
        if nine:
            runs["torch9"].append(_run(X, y, train, test, PROBE_CS, "torch"))
    best = {k: min(v, key=lambda r: r["seconds"]) for k, v in runs.items()}
    return {"source": source, "n_train": len(train), "dim": X.shape[1], "load": os.getloadavg()[0], **best}


def _describe(run: dict) -> str:
    return f"{run['seconds']:.2f} s wall ({run['cpu']:.2f} s CPU), acc {run['accuracy']:.2%} (C={run['best_C']:g})"


def rows(quick: bool = False) -> list[dict]:
    m = measure(quick)
    base, five, nine = m["sklearn5"], m["torch5"], m["torch9"]
    shape = f"{m['n_train']:,} x {m['dim']:,}"
    five_ratio, nine_ratio = base["seconds"] / five["seconds"], base["seconds"] / nine["seconds"]
    note = (f"{m['source']}; best of alternating runs; CPU-time ratio {base['cpu'] / five['cpu']:.2f}x (5 C), "
            f"{base['cpu'] / nine['cpu']:.2f}x (9 C); load average {m['load']:.1f} on {os.cpu_count()} cores")
    five_acc_ok = five["accuracy"] >= base["accuracy"] - MAX_ACCURACY_DROP
    nine_acc_ok = nine["accuracy"] >= base["accuracy"] - MAX_ACCURACY_DROP
    return [
        {"figure": f"Linear-probe sweep + refit, 5 C values, {shape} (ratio: sklearn time / ours)",
         "ours": f"{five['solver']}: {_describe(five)}", "baseline": f"{base['solver']}: {_describe(base)}",
         "ratio": five_ratio, "target": ">= 3x, accuracy >= sklearn - 0.3 pt",
         "met": bool(five_ratio >= 3 and five_acc_ok), "note": note},
        {"figure": f"Finer default sweep: 9 C values vs sklearn's 5, {shape} (ratio: sklearn 5-C time / ours)",
         "ours": f"{nine['solver']}: {_describe(nine)}", "baseline": f"{base['solver']}: {_describe(base)}",
         "ratio": nine_ratio, "target": ">= 1x (no slower than today's 5), accuracy >= sklearn - 0.3 pt",
         "met": bool(nine_ratio >= 1 and nine_acc_ok), "note": note},
        _one_thread_row(quick, shape),
    ]


def _one_thread_row(quick: bool, shape: str) -> dict:
    m = measure_one_thread(quick)
    base, five = m["sklearn5"], m["torch5"]
    ratio = base["seconds"] / five["seconds"]
    return {"figure": f"Same 5-C sweep, one thread each (torch and BLAS/OpenMP), {shape} (ratio: sklearn time / ours)",
            "ours": f"{five['solver']}: {_describe(five)}", "baseline": f"{base['solver']}: {_describe(base)}",
            "ratio": ratio, "target": "(context for the row above: the arithmetic alone)",
            "met": bool(ratio >= 3 and five["accuracy"] >= base["accuracy"] - MAX_ACCURACY_DROP),
            "note": f"one run each; load average {m['load']:.1f} on {os.cpu_count()} cores"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,500 images, one repeat")
    parser.add_argument("--features", help="npz with `features` and `labels` (default: cached mnist5k, else random)")
    parser.add_argument("--repeats", type=int, help="alternating runs per side (default 2, quick 1)")
    args = parser.parse_args()
    m = measure(args.quick, args.features, args.repeats)
    print(f"features: {m['source']} ({m['n_train']} train x {m['dim']})")
    for name in ("sklearn5", "torch5", "torch9"):
        print(f"{name:9s} {m[name]['solver']:38s} {_describe(m[name])}")
    one = measure_one_thread(args.quick, args.features)
    for name in ("sklearn5", "torch5"):
        print(f"1 thread {name:9s} {_describe(one[name])}")
    print(f"speed-up 5 C: {m['sklearn5']['seconds'] / m['torch5']['seconds']:.2f}x; "
          f"9 C (ours) vs 5 C (sklearn): {m['sklearn5']['seconds'] / m['torch9']['seconds']:.2f}x")


if __name__ == "__main__":
    main()

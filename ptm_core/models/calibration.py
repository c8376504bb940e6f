"""Which runtime and precision is fastest on this machine, by measurement rather than by rule.

A run with more than one candidate path (PyTorch or OpenVINO, fp32 or bf16) first times a few batches of each,
side by side, and keeps the answer per machine (`capabilities().fingerprint()`), model, image size and batch
size in `$PTM_DATA_DIR/calibration/`: the next run of the same model on the same machine reads it, a changed
machine or software measures again. Rules would be wrong somewhere: on an AVX2-only CPU bf16 is emulated and
slower than fp32, on one with AVX512_BF16 PyTorch's bf16 autocast beats its fp32 while OpenVINO's fp32 beats
both, and on a GPU it differs again (benchmarks/RESULTS.md has the rows).
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Callable

from ptm_core.base.files import atomic_write_bytes

from ptm_core.runs.artifacts import artifact_dir
from ptm_core.base.capabilities import capabilities
from ptm_core.base.configs import stable_hash
from ptm_core.base.native_exit import native_lock

log = logging.getLogger(__name__)
# bf16 changes the numbers a little (features at cosine ~0.999 of fp32): it is chosen only where it is clearly
# faster than the fastest fp32 path, not within the noise of a few timed batches.
BF16_MARGIN = 1.1
# Whether `--precision auto` may use a runtime's bf16 at all: only where the linear probe on its bf16 features
# stays no more than 0.3 points below its fp32 ones (MNIST-5k, bundled lite0 at 128 px, mean over 5 seeded
# splits: the "bf16 probe accuracy vs fp32" rows of benchmarks/RESULTS.md). An explicit --precision bf16 is kept.
AUTO_BF16 = {"torch": True, "openvino": True}
ROUNDS = 2  # timed calls per candidate after one warm-up call; the best round counts (noise only slows)
# Held during each timed call; the outermost of the native locks, as a timed call may enter OpenVINO's.
_timing = native_lock(depth=0)


@dataclass(frozen=True, order=True)
class Pair:
    """One way to compute: a runtime ('torch', 'openvino') and a precision ('fp32', 'bf16')."""

    runtime: str
    precision: str

    @property
    def name(self) -> str:
        return f"{self.runtime} {self.precision}"

    @property
    def numerics(self) -> str:
        """Which numbers it gives: PyTorch and OpenVINO agree in fp32 (cosine 0.9999999, tested), not in bf16
        (each rounds in other places), so bf16 features are another cache entry per runtime."""
        if self.precision == "fp32":
            return "fp32"
        return "bf16" if self.runtime == "torch" else f"bf16-{self.runtime}"


def choose(rates: dict[Pair, float]) -> Pair:
    """The fastest pair; a bf16 one only where it beats the fastest fp32 one by BF16_MARGIN."""
    best = max(rates, key=lambda p: (rates[p], p.precision == "fp32"))
    fp32 = [p for p in rates if p.precision == "fp32"]
    if best.precision != "fp32" and fp32:
        best_fp32 = max(fp32, key=rates.get)
        if rates[best] < BF16_MARGIN * rates[best_fp32]:
            return best_fp32
    return best


def measure(runs: dict[Pair, Callable[[], object]], images_per_call: int) -> dict[Pair, float]:
    """Images per second of each run: one warm-up call each (allocation, kernel choice), then ROUNDS rounds
    that alternate between the candidates, so that a busy moment of the machine hits all of them alike."""
    for run in runs.values():
        with _timing:
            run()
    best = {pair: math.inf for pair in runs}
    for _ in range(ROUNDS):
        for pair, run in runs.items():
            with _timing:
                tick = time.perf_counter()
                run()
                best[pair] = min(best[pair], time.perf_counter() - tick)
    return {pair: images_per_call / max(seconds, 1e-9) for pair, seconds in best.items()}


def calibration_key(kind: str, model_name: str, shape: object, pairs: list[Pair]) -> str:
    return stable_hash([capabilities().fingerprint(), kind, model_name, shape, sorted(p.name for p in pairs)])


def calibrated(kind: str, model_name: str, shape: object, pairs: list[Pair],
               make_runs: Callable[[], tuple[dict[Pair, Callable[[], object]], int]]
               ) -> tuple[dict[Pair, float], str]:
    """Measured images/s per pair and 'cached' or 'measured'; `make_runs()` -> (runs, images per call) is only
    called when this machine has not measured these pairs for this model and shape before."""
    path = artifact_dir("calibration") / f"{calibration_key(kind, model_name, shape, pairs)}.json"
    cached = _read(path, pairs)
    if cached is not None:
        return cached, "cached"
    runs, images = make_runs()
    rates = measure(runs, images)
    record = {"machine": capabilities().describe(), "kind": kind, "model": model_name, "shape": shape,
              "images_per_s": {p.name: r for p, r in rates.items()}, "measured_at": time.time()}
    try:
        atomic_write_bytes(path, json.dumps(record, default=str).encode())
    except OSError as exc:  # only the next run's few seconds are lost
        log.warning("could not keep the calibration: %s", exc)
    return rates, "measured"


def _read(path, pairs: list[Pair]) -> dict[Pair, float] | None:
    """A kept calibration for exactly these pairs; anything unreadable or odd counts as none (measured again)."""
    try:
        rates = json.loads(path.read_text())["images_per_s"]
        found = {p: float(rates[p.name]) for p in pairs}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return found if all(math.isfinite(r) and r > 0 for r in found.values()) else None


def describe(rates: dict[Pair, float], chosen: Pair, how: str) -> str:
    """E.g. 'openvino fp32 (fastest measured here: openvino fp32 270 img/s, torch bf16 140, torch fp32 52)'."""
    if not rates:
        return f"{chosen.name} (the only candidate)"
    listed = ", ".join(f"{p.name} {r:.0f}" for p, r in sorted(rates.items(), key=lambda item: -item[1]))
    return f"{chosen.name} ({how} on this machine, img/s: {listed})"

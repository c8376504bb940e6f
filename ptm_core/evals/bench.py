"""The leaderboard: which backbone reads these images best, and how sure that is.

Per backbone (and, asked for, the same architecture with random weights) the features are extracted once
(`features.extraction.extract`, from the cache when seen before); per seed, the linear probe and k-NN are fitted on
that seed's stratified train/test split (`ProbeConfig(seed=s)`, the k-NN on the same split). Each run is one JSON
under `DIR/runs/`, written atomically with a hash of everything that determines its numbers, so a re-run skips the
runs it finds; `DIR/leaderboard.csv` is recomputed from those files alone.

A row's interval: with three seeds or more, Student's t over the seeds' accuracies (base.stats.mean_interval), which
covers how the split moves the number. With fewer, a t-interval is useless (t_0.975 is 12.7 on two draws, and one
draw has no spread; nor have seeds that all score the same), so the row gets a percentile bootstrap over its test
images instead (Efron & Tibshirani 1993, ch. 13; scipy.stats.bootstrap): each seed's right/wrong test images
resampled with replacement, the statistic the mean of the seeds' accuracies. That interval covers only the drawing of
the test images, not the split's seed; the `interval` column says which one a row has.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ptm_core.base.messages import M_
from ptm_core.base import checks
from ptm_core.base.configs import (BackboneConfig, DatasetConfig, ExtractionConfig, KNNConfig, Keyed, ProbeConfig,
                                   describe_data, stable_hash)
from ptm_core.base.errors import Cancelled, PTMError
from ptm_core.base.files import write_atomically
from ptm_core.base.paths import check_path_text
from ptm_core.base.stats import CONFIDENCE, mean_interval
from ptm_core.base.text import csv_safe_frame, json_safe
from ptm_core.data import load_dataset
from ptm_core.features.extraction import extract
from ptm_core.features.featureset import FeatureSet
from ptm_core.models.weights import check_model_name, load_backbone, weight_source_names
from ptm_core.probes.knn import run_knn_probe
from ptm_core.probes.linear import cached_linear_probe

T_MIN_SEEDS = 3  # below this a row's interval is the bootstrap over its test images
T_INTERVAL, BOOTSTRAP_INTERVAL = "Student's t", "bootstrap"  # how the `interval` column starts
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0  # the resampling is seeded: the same runs give the same leaderboard
TOP_K = 5
EXTRACT_SHARE = 0.7  # of an entry's progress: the extraction; the seeds' probes share the rest
COLUMNS = ("backbone", "weights", "dataset", "image_size", "seeds", "linear_mean", "linear_ci_low", "linear_ci_high",
           "knn_mean", "images_per_s", "feature_dim", "params_m", "interval", "n_test", "balanced_mean", "top5_mean")
ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class BenchConfig(Keyed):
    """What a leaderboard is of. `seeds`: a count (seeds 0..n-1) or the seeds themselves; `weights` a weight source
    of every backbone (bundled, hub, random); `include_random` adds each backbone with random weights (`init_seed`)."""

    backbones: tuple[str, ...] = ("tf_efficientnet_lite0",)
    weights: str = "bundled"
    include_random: bool = False
    dataset: DatasetConfig = DatasetConfig()
    image_size: int = 64
    seeds: tuple[int, ...] | int = 3
    knn: KNNConfig = KNNConfig()
    init_seed: int = 0
    precision: str = "auto"
    batch_size: int = 64  # speed only, not in the runs' hash
    device: str = "auto"  # speed only, not in the runs' hash
    runtime: str = "auto"  # PyTorch or OpenVINO: fp32 features are the same either way (extraction_path)

    def __post_init__(self) -> None:
        names = tuple(dict.fromkeys(n.strip() for n in (
            self.backbones.split(",") if isinstance(self.backbones, str) else self.backbones) if n.strip()))
        if not names:
            raise PTMError("A leaderboard needs at least one backbone (--backbones A,B,...).")
        seeds = self.seeds
        if isinstance(seeds, int) and not isinstance(seeds, bool):
            seeds = tuple(range(checks.whole("--seeds", seeds, 1, 100)))
        seeds = tuple(checks.seed("seed", s) for s in seeds)
        if not seeds or len(set(seeds)) != len(seeds):
            raise PTMError(f"A leaderboard needs one or more different seeds, got {list(seeds)}.")
        object.__setattr__(self, "backbones", names)
        object.__setattr__(self, "seeds", seeds)

    def entries(self) -> list[BackboneConfig]:
        """Each (backbone, weights) the leaderboard has a row for, in order; random init after each backbone."""
        out = []
        for name in self.backbones:
            out.append(BackboneConfig(name, self.weights, self.init_seed))
            if self.include_random and self.weights != "random":
                out.append(BackboneConfig(name, "random", self.init_seed))
        return out

    def extraction(self) -> ExtractionConfig:
        return ExtractionConfig(self.image_size, self.batch_size, self.device, precision=self.precision,
                                runtime=self.runtime)


@dataclass
class BenchResult:
    out_dir: Path
    rows: list[dict]  # the leaderboard, best linear probe first
    runs: list[dict]  # every run's JSON
    computed: int  # runs fitted by this call
    reused: int  # runs read back from DIR/runs

    @property
    def runs_dir(self) -> Path:
        return self.out_dir / "runs"

    @property
    def leaderboard(self) -> Path:
        return self.out_dir / "leaderboard.csv"


def check_config(config: BenchConfig) -> None:
    """Every name and setting, before any work: an unknown backbone is named here, not after an hour of others."""
    for name in config.backbones:
        check_model_name(name)
    sources = weight_source_names()
    if config.weights not in sources:
        raise PTMError(f"--weights for a leaderboard is one of {', '.join(sources)}, got '{config.weights}' "
                       f"(one checkpoint file cannot serve several backbones).")
    checks.image_size(config.image_size)
    checks.whole("--batch-size", config.batch_size, 1, checks.MAX_BATCH)
    checks.seed("--init-seed", config.init_seed)


def run_file(out_dir: Path, entry: BackboneConfig, seed: int) -> Path:
    """DIR/runs/<backbone>-<weights>-<seed>.json, any character a file name should not hold as '_'."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", f"{entry.name}-{entry.weights}-{seed}")
    return Path(out_dir) / "runs" / f"{safe}.json"


def run_hash(config: BenchConfig, entry: BackboneConfig, seed: int, fingerprint: str) -> str:
    """What determines a run's numbers: backbone and weights, the images (their content), size, precision asked
    for, the probes' settings and the seed. Device and batch size change speed only."""
    init = entry.seed if entry.weights == "random" else None
    return stable_hash(["bench-run", entry.name, entry.weights, init, config.dataset.to_dict(), fingerprint,
                        config.image_size, config.precision, ProbeConfig(seed=seed).key(),
                        dataclasses.replace(config.knn, seed=seed).key(), seed])


def read_run(path: Path, expected_hash: str) -> dict | None:
    """The run in `path` when it exists, reads as JSON and was made with these settings; else None (recomputed)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("config_hash") == expected_hash else None


def write_json(path: Path, record: dict) -> None:
    text = json.dumps(json_safe(record), indent=1, allow_nan=False)
    write_atomically(path, lambda tmp: Path(tmp).write_text(text))


def correct_text(right: np.ndarray) -> str:
    """Which test images (in index order) a method got right, one "1"/"0" each: what the bootstrap resamples."""
    return "".join("1" if r else "0" for r in np.asarray(right, dtype=bool))


def measure(features: FeatureSet, entry: BackboneConfig, seed: int, config: BenchConfig, params_m: float | None,
            cancelled: Callable[[], bool] | None = None) -> dict:
    """One run: the linear probe and k-NN on seed `seed`'s split of these features, as its JSON record."""
    from sklearn.metrics import balanced_accuracy_score, top_k_accuracy_score

    X, y = features.features, features.labels
    linear = cached_linear_probe(X, y, features.key, ProbeConfig(seed=seed), cancelled=cancelled)
    if cancelled is not None and cancelled():
        raise Cancelled()
    knn = run_knn_probe(X, y, dataclasses.replace(config.knn, seed=seed))
    test = np.asarray(linear.test_indices)
    if not np.array_equal(test, knn.test_indices):  # both split by labels and seed alone
        raise PTMError("The linear probe and k-NN were scored on different test images; this is a bug, please "
                       "report it.")
    truth, classes = y[test], np.unique(np.delete(y, test))  # the probe's columns: the classes it was trained on
    top5 = (float(top_k_accuracy_score(truth, linear.probabilities, k=TOP_K, labels=classes))
            if len(classes) > TOP_K else None)
    meta = features.meta
    return {"backbone": entry.name, "weights": entry.weights, "weights_identity": meta.get("weights"),
            "init_seed": entry.seed if entry.weights == "random" else None,
            "dataset": {"spec": config.dataset.spec, "limit": config.dataset.limit, "subset_seed": config.dataset.seed,
                        "fingerprint": meta.get("dataset_fingerprint"), "n_images": int(len(y))},
            "image_size": config.image_size, "seed": seed, "n_train": linear.n_train, "n_test": linear.n_test,
            "test_split": hashlib.sha256(test.astype(np.int64).tobytes()).hexdigest()[:16],
            "linear_accuracy": linear.test_accuracy, "linear_ci95": list(linear.test_accuracy_ci95),
            "balanced_accuracy": float(balanced_accuracy_score(truth, linear.predictions)), "top5_accuracy": top5,
            "best_C": linear.best_C, "c_rule": linear.c_rule,
            "knn_accuracy": knn.test_accuracy, "knn_ci95": list(knn.test_accuracy_ci95), "knn_k": knn.k,
            "knn_temperature": knn.temperature,
            "linear_correct": correct_text(linear.predictions == truth),
            "knn_correct": correct_text(knn.predictions == truth),
            "images_per_s": meta.get("images_per_s"), "features_from_cache": bool(meta.get("from_cache")),
            "precision": meta.get("precision"), "runtime": meta.get("runtime"), "device": meta.get("device"),
            "feature_dim": int(X.shape[1]), "params_m": params_m, "features_key": features.key,
            "probe_seconds": linear.seconds, "knn_seconds": knn.seconds}


def bootstrap_interval(correct: list[str], confidence: float = CONFIDENCE,
                       seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap (scipy.stats.bootstrap, `BOOTSTRAP_RESAMPLES` resamples, seeded) of the mean over seeds
    of each seed's test accuracy, resampling each seed's right/wrong test images on their own."""
    from scipy import stats

    samples = tuple(np.frombuffer(text.encode(), dtype=np.uint8) == ord("1") for text in correct)
    samples = tuple(s.astype(float) for s in samples)

    def mean_of_accuracies(*resampled, axis=-1):
        return np.mean([s.mean(axis=axis) for s in resampled], axis=0)

    result = stats.bootstrap(samples, mean_of_accuracies, n_resamples=BOOTSTRAP_RESAMPLES, vectorized=True,
                             confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def interval_of(runs: list[dict]) -> tuple[float, float, str]:
    """A row's 95 % interval of the mean linear accuracy and which one it is, in words."""
    accuracies = [r["linear_accuracy"] for r in runs]
    if len(runs) >= T_MIN_SEEDS and len(set(accuracies)) > 1:
        low, high = mean_interval(accuracies)
        return max(low, 0.0), min(high, 1.0), f"{T_INTERVAL} over {len(runs)} seeds"
    low, high = bootstrap_interval([r["linear_correct"] for r in runs])
    seeds = f"{len(runs)} seed{'s' * (len(runs) != 1)}"
    # Seeds that all score the same leave t nothing to measure (a zero-width interval), so they get the bootstrap too.
    why = f"t needs {T_MIN_SEEDS} seeds" if len(runs) < T_MIN_SEEDS else "the seeds agree exactly, t has no spread"
    return low, high, (f"{BOOTSTRAP_INTERVAL} over {runs[0]['n_test']} test images, {seeds} (percentile, "
                       f"{BOOTSTRAP_RESAMPLES} resamples; {why})")


def leaderboard_row(config: BenchConfig, runs: list[dict]) -> dict:
    """One backbone and weights, from its runs' JSON alone."""
    low, high, how = interval_of(runs)
    first = runs[0]
    top5 = [r["top5_accuracy"] for r in runs]
    speeds = [r["images_per_s"] for r in runs if r.get("images_per_s") is not None]
    return {"backbone": first["backbone"], "weights": first["weights"], "dataset": describe_data(config.dataset),
            "image_size": first["image_size"], "seeds": len(runs),
            "linear_mean": float(np.mean([r["linear_accuracy"] for r in runs])), "linear_ci_low": low,
            "linear_ci_high": high, "knn_mean": float(np.mean([r["knn_accuracy"] for r in runs])),
            "images_per_s": float(np.mean(speeds)) if speeds else None, "feature_dim": first["feature_dim"],
            "params_m": first["params_m"], "interval": how, "n_test": first["n_test"],
            "balanced_mean": float(np.mean([r["balanced_accuracy"] for r in runs])),
            "top5_mean": None if None in top5 else float(np.mean(top5))}


def write_leaderboard(out_dir: Path, rows: list[dict]) -> None:
    import pandas as pd

    frame = csv_safe_frame(pd.DataFrame(rows, columns=list(COLUMNS)))
    data = frame.to_csv(index=False).encode()
    write_atomically(Path(out_dir) / "leaderboard.csv", lambda tmp: Path(tmp).write_bytes(data))


def params_millions(entry: BackboneConfig) -> float:
    """Loads the backbone as a run would: a name without these weights here fails now with the loader's words."""
    model = load_backbone(entry).model
    return sum(p.numel() for p in model.parameters()) / 1e6


def prepare_out_dir(out_dir: Path | str) -> Path:
    """DIR with DIR/runs in it, writable, or one PTMError saying why not (before any work)."""
    check_path_text(out_dir, "--out")
    out_dir = Path(out_dir).expanduser()
    try:
        (out_dir / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission, a read-only disk
        raise PTMError(f"--out {out_dir}: cannot make the leaderboard's folder there "
                       f"({exc.strerror or exc}).") from None
    if not os.access(out_dir / "runs", os.W_OK | os.X_OK):
        raise PTMError(f"--out {out_dir}: cannot write there (read-only).")
    return out_dir


def run_entry(config: BenchConfig, entry: BackboneConfig, todo: list[int], share: tuple[float, float],
              params_m: float, progress: ProgressFn, cancelled: Callable[[], bool] | None,
              keep: Callable[[int, dict], None]) -> None:
    """One row's missing runs: its features extracted once, then per seed the probes, each run kept (`keep`) as it
    ends, so that a stopped bench loses at most the run it was in."""
    label, (start, stop) = M_("{model} ({weights})", model=entry.name, weights=entry.weights), share

    def extracting(fraction: float, message: str) -> None:
        progress(start + (stop - start) * EXTRACT_SHARE * fraction, M_("{label}: {step}", label=label, step=message))

    features = extract(config.dataset, entry, config.extraction(), progress=extracting, cancelled=cancelled)
    for j, seed in enumerate(todo):
        if cancelled is not None and cancelled():
            raise Cancelled()
        progress(start + (stop - start) * (EXTRACT_SHARE + (1 - EXTRACT_SHARE) * j / len(todo)),
                 f"{label}: linear probe and k-NN, seed {seed}")
        keep(seed, measure(features, entry, seed, config, params_m, cancelled))


def run_bench(config: BenchConfig, out_dir: Path, progress: ProgressFn | None = None,
              cancelled: Callable[[], bool] | None = None, stage: Callable[[str], None] | None = None) -> BenchResult:
    """Every run the leaderboard needs that `out_dir` lacks, then the leaderboard. Checks every backbone (name, and
    its weights where a run needs them) and the data before extracting anything."""
    check_config(config)
    out_dir = prepare_out_dir(out_dir)
    fingerprint = load_dataset(config.dataset).fingerprint
    entries = config.entries()
    hashes = {(i, s): run_hash(config, entry, s, fingerprint) for i, entry in enumerate(entries) for s in config.seeds}
    plan = {(i, s): read_run(run_file(out_dir, entries[i], s), h) for (i, s), h in hashes.items()}
    params = {i: params_millions(entry) for i, entry in enumerate(entries)
              if any(plan[i, s] is None for s in config.seeds)}
    progress = progress or (lambda fraction, message: None)
    computed = 0
    for i, entry in enumerate(entries):
        share = (i / len(entries), (i + 1) / len(entries))
        todo = [s for s in config.seeds if plan[i, s] is None]
        if todo and stage is not None:
            stage(M_("{model} ({weights}): extracting features ({i}/{n})", model=entry.name, weights=entry.weights,
                     i=i + 1, n=len(entries)))

        def keep(seed: int, record: dict) -> None:
            record["config_hash"] = hashes[i, seed]
            write_json(run_file(out_dir, entry, seed), record)
            plan[i, seed] = record

        if todo:
            run_entry(config, entry, todo, share, params[i], progress, cancelled, keep)
            computed += len(todo)
        progress(share[1], M_("{model} ({weights}): {step}", model=entry.name, weights=entry.weights,
                              step=M_("done") if todo else M_("{n} runs read back", n=len(config.seeds))))
    runs = [plan[i, s] for i in range(len(entries)) for s in config.seeds]
    rows = sorted((leaderboard_row(config, [plan[i, s] for s in config.seeds]) for i in range(len(entries))),
                  key=lambda row: -row["linear_mean"])
    write_leaderboard(out_dir, rows)
    return BenchResult(out_dir, rows, runs, computed, len(runs) - computed)

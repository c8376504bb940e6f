"""Benchmark inputs: cached real mnist5k features when there are any, else seeded random ones; a data directory
for a benchmark run."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def _candidates() -> list[Path]:
    roots = [os.environ.get("PTM_DATA_DIR"), str(Path.home() / ".cache" / "ptm-explorer"), "/tmp/ptmdata"]
    return [p for r in roots if r for p in sorted(Path(r).glob("features/*.npz")) if ".partial." not in p.name]


def load_labelled(n: int = 5000, dim: int = 1280, path: str | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """n x dim float32 features, their labels and where they came from.

    Fallback: seeded Gaussian classes (10 means, unit noise), so a probe has something to separate.
    """
    for candidate in [Path(path)] if path else _candidates():
        try:
            with np.load(candidate) as data:
                meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
                features, labels = data["features"], data["labels"]
        except (OSError, KeyError, ValueError):
            continue
        if path or (meta.get("dataset") == "mnist5k" and features.shape == (n, dim)):
            return np.ascontiguousarray(features, dtype=np.float32), labels.astype(np.int64), str(candidate)
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 10
    features = (rng.normal(scale=0.3, size=(10, dim))[labels] + rng.normal(size=(n, dim))).astype(np.float32)
    return features, labels, f"random {n}x{dim}, 10 Gaussian classes (seed 0)"


def load_features(n: int = 5000, dim: int = 1280, path: str | None = None) -> tuple[np.ndarray, str]:
    """n x dim float32 features and where they came from."""
    features, _, source = load_labelled(n, dim, path)
    return features, source


def extract_mnist5k(folder: str) -> str:
    """The app's default run's features (MNIST-5k, bundled tf_efficientnet_lite0, 128 px: 5,000 x 1,280), extracted
    now by the CLI into `folder` (about a minute here); the path of the npz."""
    out = str(Path(folder) / "mnist5k-lite0-128.npz")
    subprocess.run([sys.executable, "-m", "ptm_core", "--data-dir", str(Path(folder) / "data"), "extract",
                    "--backbone", "tf_efficientnet_lite0", "--weights", "bundled", "--dataset", "mnist5k",
                    "--image-size", "128", "--out", out], cwd=Path(__file__).resolve().parent.parent, check=True,
                   capture_output=True)
    return out


@contextlib.contextmanager
def data_dir(path: Path | str):
    """PTM_DATA_DIR set to `path` for the block, and as it was after."""
    previous, os.environ["PTM_DATA_DIR"] = os.environ.get("PTM_DATA_DIR"), str(path)
    try:
        yield
    finally:
        os.environ.pop("PTM_DATA_DIR")
        if previous is not None:
            os.environ["PTM_DATA_DIR"] = previous

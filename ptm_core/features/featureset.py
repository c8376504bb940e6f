"""A set of features as the engine passes it around: rows, labels, class names, ids, and what produced them.

Plain numpy (no torch, no timm): the probes, maps, files and shards that read a FeatureSet need nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptm_core.base.errors import PTMError
from ptm_core.runs.artifacts import load_npz, save_npz

REQUIRED = ("features", "labels")
MAX_CLASSES = 100_000  # class names are made up from label values when a file lists none


def _check_labels(labels: np.ndarray, n: int, n_classes: int | None, where: str) -> None:
    if labels.ndim != 1:
        raise PTMError(f"{where}: 'labels' must be one label per row, got shape {labels.shape}.")
    if len(labels) != n:
        raise PTMError(f"{where}: 'labels' has {len(labels):,} entries but 'features' has {n:,} rows; "
                       f"they must match one to one.")
    if not np.issubdtype(labels.dtype, np.integer):
        raise PTMError(f"{where}: 'labels' must be integer class indices, got {labels.dtype} values.")
    if len(labels) and labels.min() < 0:
        raise PTMError(f"{where}: 'labels' contains {int(labels.min())}; class indices start at 0.")
    if n_classes is not None and len(labels) and labels.max() >= n_classes:
        raise PTMError(f"{where}: 'labels' contains class {int(labels.max())} but 'class_names' lists "
                       f"only {n_classes}.")
    if n_classes is None and len(labels) and labels.max() >= MAX_CLASSES:
        raise PTMError(f"{where}: 'labels' goes up to {int(labels.max()):,} and there are no 'class_names'; "
                       f"label classes 0, 1, 2, ... or add class_names.")


def validate_feature_arrays(arrays: dict[str, np.ndarray], where: str) -> None:
    """One PTMError naming the first thing wrong with these arrays, or nothing."""
    missing = [k for k in REQUIRED if k not in arrays]
    if missing:
        raise PTMError(f"{where} has no {', '.join(repr(k) for k in missing)} array; "
                       f"expected an npz written by `extract --out` (features, labels, class_names, ids).")
    features = arrays["features"]
    if features.ndim != 2 or not np.issubdtype(features.dtype, np.number) or np.iscomplexobj(features):
        raise PTMError(f"{where}: 'features' must be a 2-D array of real numbers (rows x dims), "
                       f"got {features.dtype} of shape {features.shape}.")
    if not features.size:
        raise PTMError(f"{where}: 'features' has no rows or no dimensions (shape {features.shape}).")
    if not np.isfinite(features).all():
        raise PTMError(f"{where}: 'features' contains NaN or infinite values.")
    # Cast to float32 below, values beyond its range would turn infinite; a float32 array cannot hold any.
    largest = float(np.abs(features).max()) if features.dtype.itemsize > 4 else 0.0
    if largest > float(np.finfo(np.float32).max):
        raise PTMError(f"{where}: 'features' holds values as large as {largest:.3g}, beyond float32's "
                       f"±3.4e38 (the precision probes and maps use); rescale them or extract them again.")
    names = arrays.get("class_names")
    if names is not None and names.ndim != 1:
        raise PTMError(f"{where}: 'class_names' must be a list of names, got shape {names.shape}.")
    _check_labels(arrays["labels"], len(features), None if names is None else len(names), where)
    ids = arrays.get("ids")
    if ids is not None and (ids.ndim != 1 or len(ids) != len(features)):
        raise PTMError(f"{where}: 'ids' has {ids.size:,} entries for {len(features):,} rows.")



@dataclass
class FeatureSet:
    features: np.ndarray  # N x D float32
    labels: np.ndarray  # N int64
    class_names: list[str]
    ids: list[str]
    key: str
    meta: dict = field(default_factory=dict)

    def to_npz(self, path) -> None:
        save_npz(path, meta=self.meta, features=self.features, labels=self.labels,
                 class_names=np.array(self.class_names), ids=np.array(self.ids))

    @classmethod
    def from_npz(cls, path, key: str = "", discard_invalid: bool = True) -> "FeatureSet | None":
        loaded = load_npz(path, discard_invalid)
        if loaded is None:
            return None
        arrays, meta = loaded
        try:
            validate_feature_arrays(arrays, Path(path).name)
        except PTMError:
            if not discard_invalid:
                raise
            Path(path).unlink(missing_ok=True)  # a cache entry that makes no sense is recomputed, not shown
            return None
        return cls(arrays["features"].astype(np.float32), arrays["labels"].astype(np.int64),
                   [str(c) for c in arrays["class_names"]], [str(i) for i in arrays["ids"]],
                   key or meta.get("key", ""), meta)

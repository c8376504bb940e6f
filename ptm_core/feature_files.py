"""Features npz files a user names (`--features`): validated by content, bounded in size.

Checksums guard the cache against half-written or rotted entries; a user's own file (copied,
renamed, written by another tool) has no sidecar to match and needs none. What matters is that
its arrays make sense together, so each is checked and the first problem is named.
"""
from __future__ import annotations

import json
import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ptm_core.artifacts import file_sha256
from ptm_core.data.ingest import check_packed_file, ensure_allowed
from ptm_core.errors import PTMError
from ptm_core.limits import LOAD_BYTES_ENV, max_load_bytes, mb

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


def check_declared_sizes(path: Path, what: str = "--features") -> None:
    """Bound what each array's .npy header declares before numpy allocates it: a 2 KB npz whose header says
    (2**31, 64) float64 asked for 1 TiB (MemoryError). The total must fit PTM_MAX_LOAD_BYTES, and no array may
    declare more bytes than its entry holds (a truncated or forged file)."""
    limit, total = max_load_bytes(), 0
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(member)
                declared = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
                if declared > info.file_size:
                    raise PTMError(f"{what} {path.name}: array '{info.filename}' declares {mb(declared)} MB but holds "
                                   f"{mb(info.file_size)} MB; the file is damaged or forged. Extract the features again.")
                total += declared
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error):
        return  # not readable as arrays: _load says so in its own words
    if total > limit:
        raise PTMError(f"{what} {path.name} declares {mb(total)} MB of arrays, over the {mb(limit)} MB limit "
                       f"({LOAD_BYTES_ENV}).")


def _load(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic == b"\x93NUMPY":
        raise PTMError(f"{path.name} holds a single array, not a features npz written by `extract --out`.")
    if not magic.startswith(b"PK"):  # numpy would try it as a pickle and advise allow_pickle
        raise PTMError(f"{path.name} is not an npz archive of arrays; point --features at a file written by "
                       f"`extract --out`.")
    check_declared_sizes(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files if k != "meta"}
            meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise PTMError(f"{path.name} holds Python objects, which are not loaded (they could run code); "
                           f"save plain numeric arrays, as `extract --out` does.") from None
        raise PTMError(f"{path.name} is not an npz archive of arrays; point --features at a file written by "
                       f"`extract --out`.") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PTMError(f"{path.name} is damaged or not an npz written by `extract --out` "
                       f"({type(exc).__name__}); extract the features again.") from None
    return arrays, meta if isinstance(meta, dict) else {}


def read_features_file(path: str | Path):
    """A FeatureSet from a user's npz: size-bounded, validated by content, checksum not required."""
    from ptm_core.extraction import FeatureSet
    from ptm_core.shards import find_shard_folder, load_sharded

    path = Path(path).expanduser()
    ensure_allowed(path, "--features")  # like folders, zips and weights: inside PTM_ALLOWED_ROOTS
    folder = find_shard_folder(path)
    if folder is not None:  # a shard set written by `extract --engine ray`, named by its folder or manifest
        return load_sharded(folder, discard_invalid=False)
    if not path.is_file():
        raise PTMError(f"Features file not found: {path}")
    check_packed_file(path, "--features")
    arrays, meta = _load(path)
    validate_feature_arrays(arrays, path.name)
    n = len(arrays["features"])
    names = [str(c) for c in arrays["class_names"]] if "class_names" in arrays else \
        [str(i) for i in range(int(arrays["labels"].max()) + 1 if n else 0)]
    ids = [str(i) for i in arrays["ids"]] if "ids" in arrays else [f"{path.stem}/{i}" for i in range(n)]
    return FeatureSet(arrays["features"].astype(np.float32), arrays["labels"].astype(np.int64), names, ids,
                      f"file:{file_sha256(path)[:16]}", meta)  # by content: an edited file is another set

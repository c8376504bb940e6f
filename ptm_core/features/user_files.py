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

from ptm_core.base.files import file_sha256
from ptm_core.data.ingest import check_packed_file, ensure_allowed
from ptm_core.base.errors import PTMError
from ptm_core.base.limits import LOAD_BYTES_ENV, max_load_bytes, mb
from ptm_core.features.featureset import FeatureSet, validate_feature_arrays
from ptm_core.features.shards import find_shard_folder, load_sharded

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

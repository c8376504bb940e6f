"""Features stored as row-range shards plus a manifest, as the Ray engine writes them (no Ray needed here).

Layout, beside the single-file cache of the local engine and under the same feature key:

    $PTM_DATA_DIR/features/<key>/shards/rows-<start>-<stop>.npz   (checksum inside, via artifacts.save_npz)
    $PTM_DATA_DIR/features/<key>/shards/manifest.json              (written last: its presence = complete)

A shard is named by the rows it holds, so a stopped run keeps every finished shard and a rerun
computes only the ranges whose file is missing or fails its checksum. Readers never see a set
without its manifest, and the manifest is written only after every shard is on disk.

Loading (`load_sharded`) is the one place that turns shards into a FeatureSet: each shard's
`features` member is memory-mapped straight out of its npz (np.savez stores members uncompressed)
and copied once into one preallocated array, so the whole set is read once and held once;
probes, maps and the app then use it exactly like a single-file entry.
"""
from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import numpy as np

from ptm_core.base.files import atomic_write_bytes

from ptm_core.runs.artifacts import artifact_dir, npz_intact, save_npz
from ptm_core.base.errors import PTMError
from ptm_core.features.featureset import FeatureSet, validate_feature_arrays
from ptm_core.base.limits import LOAD_BYTES_ENV, max_load_bytes, mb

MANIFEST = "manifest.json"
SHARD_ROWS = 1024  # ~5 MB of 1280-d float32 per shard: a stop loses little, a listing stays short


def shard_dir(key: str) -> Path:
    return artifact_dir("features") / key / "shards"


def shard_name(start: int, stop: int) -> str:
    return f"rows-{start:09d}-{stop:09d}.npz"


def plan(n: int, rows: int = SHARD_ROWS) -> list[tuple[int, int]]:
    """The row ranges of a run over n images; fixed by n and rows, so a rerun finds the same ranges."""
    return [(start, min(start + rows, n)) for start in range(0, n, rows)]


def _remove_shard(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".sha256").unlink(missing_ok=True)


def finished_shards(folder: Path, ranges: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """The planned ranges whose shard is on disk and intact; a damaged one is removed to be redone."""
    done = set()
    for start, stop in ranges:
        path = folder / shard_name(start, stop)
        if npz_intact(path):
            done.add((start, stop))
        elif path.exists():
            _remove_shard(path)
    return done


def write_shard(folder: Path, start: int, stop: int, features: np.ndarray, unreadable: dict[int, str]) -> Path:
    """One shard, atomically (temp file + rename, its checksum inside); `unreadable` maps row -> reason."""
    meta = {"start": start, "stop": stop, "unreadable": {str(i): r for i, r in unreadable.items()}}
    return save_npz(folder / shard_name(start, stop), meta=meta, features=np.ascontiguousarray(features, np.float32))


def shard_unreadable(path: Path) -> dict[int, str]:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
    return {int(i): str(r) for i, r in meta.get("unreadable", {}).items()}


def write_manifest(folder: Path, manifest: dict) -> Path:
    path = folder / MANIFEST
    atomic_write_bytes(path, json.dumps(manifest, sort_keys=True).encode())
    return path


def mmap_npz_member(path: Path, name: str) -> np.ndarray:
    """A read-only memory map of one uncompressed .npy member inside an npz (np.load ignores mmap_mode there)."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(f"{name}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        raise PTMError(f"{path.name}: '{name}' is compressed and cannot be memory-mapped; extract it again.")
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local = handle.read(30)  # the zip local file header: the member's bytes follow its name and extra field
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        handle.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(handle)
        offset = handle.tell()
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def _read_manifest(folder: Path) -> dict | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("complete") else None


def _assemble(folder: Path, manifest: dict) -> np.ndarray:
    """All shards' rows in order, the unreadable rows left out, in one array read once from the maps."""
    shards, n, dim = manifest["shards"], int(manifest["n_rows"]), int(manifest["dim"])
    if n * dim * 4 > max_load_bytes():
        raise PTMError(f"Sharded features {folder.parent.name} are {mb(n * dim * 4)} MB, over the "
                       f"{mb(max_load_bytes())} MB limit ({LOAD_BYTES_ENV}).")
    dropped = {int(i) for i in manifest.get("unreadable", {})}
    out = np.empty((n - len(dropped), dim), dtype=np.float32)
    row = stop = 0
    for entry in shards:
        start, stop = int(entry["start"]), int(entry["stop"])
        path = folder / entry["file"]
        if not npz_intact(path):
            raise PTMError(f"Shard {entry['file']} of {folder.parent.name} is missing or damaged.")
        block = mmap_npz_member(path, "features")
        if block.shape != (stop - start, dim):
            raise PTMError(f"Shard {entry['file']} holds {block.shape} features, expected {(stop - start, dim)}.")
        keep = [i - start for i in range(start, stop) if i not in dropped]
        out[row:row + len(keep)] = block if len(keep) == len(block) else block[keep]
        row += len(keep)
        del block  # unmap now, not at the end: peak memory is one array plus the page cache
    if row != len(out) or stop != n:
        raise PTMError(f"Shards of {folder.parent.name} do not cover its {n:,} rows.")
    return out


def load_sharded(folder: Path, key: str = "", discard_invalid: bool = True):
    """The FeatureSet of a complete shard set, or None when there is none (yet).

    A damaged set found in the cache (`discard_invalid`) loses its manifest, so the Ray engine
    re-checks every shard and redoes only the bad ones; a set the user named raises PTMError.
    """

    folder = Path(folder)
    manifest = _read_manifest(folder)
    if manifest is None:
        if not discard_invalid:
            raise PTMError(f"{folder} holds no complete shard set ({MANIFEST} missing or unfinished).")
        return None
    try:
        features = _assemble(folder, manifest)
        arrays = {"features": features, "labels": np.asarray(manifest["labels"], dtype=np.int64),
                  "class_names": np.asarray(manifest["class_names"]), "ids": np.asarray(manifest["ids"])}
        validate_feature_arrays(arrays, f"{folder.parent.name}/{MANIFEST}")
    except (PTMError, KeyError, TypeError, ValueError, OSError, zipfile.BadZipFile) as exc:
        if not discard_invalid:
            raise PTMError(str(exc) if isinstance(exc, PTMError) else
                           f"{folder} is not a readable shard set ({type(exc).__name__}).") from None
        (folder / MANIFEST).unlink(missing_ok=True)
        return None
    meta = dict(manifest.get("meta", {}), sharded=True, shards=len(manifest["shards"]))
    return FeatureSet(features, arrays["labels"], [str(c) for c in manifest["class_names"]],
                      [str(i) for i in manifest["ids"]], key or manifest.get("key", ""), meta)


def find_shard_folder(path: Path) -> Path | None:
    """The shard folder a user's `--features` names: the folder, its parent (<key>/) or the manifest itself."""
    path = Path(path)
    for candidate in (path.parent if path.name == MANIFEST else path, path / "shards"):
        if (candidate / MANIFEST).is_file() or (candidate.is_dir() and any(candidate.glob("rows-*.npz"))):
            return candidate  # without a manifest, load_sharded says the set is unfinished
    return None

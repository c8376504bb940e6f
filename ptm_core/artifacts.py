"""Atomic npz artifacts on disk: written to a temp file and renamed, checked by checksum on read."""
from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ptm_core.paths import data_dir


def artifact_dir(kind: str) -> Path:
    path = data_dir() / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) so big checkpoints and zips hash once."""
    stat = Path(path).stat()
    return _sha256_cached(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=128)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return _sha256(Path(path))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_npz(path: Path, meta: dict | None = None, **arrays: np.ndarray) -> Path:
    """Write arrays (+ a JSON meta blob) atomically, with a sidecar checksum written after."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with open(tmp, "wb") as handle:
            np.savez(handle, meta=np.array(json.dumps(meta or {})), **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        checksum = _sha256(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    atomic_write_bytes(path.with_name(path.name + ".sha256"), checksum.encode())
    return path


def load_npz(path: Path, discard_invalid: bool = True) -> tuple[dict[str, np.ndarray], dict] | None:
    """Arrays and meta, or None when missing or when the checksum does not match.

    A cache entry that fails its checksum is deleted so it gets recomputed; a file the user
    named (`discard_invalid=False`) is left alone.
    """
    path = Path(path)
    sidecar = path.with_name(path.name + ".sha256")
    if not path.exists():
        return None
    if not sidecar.exists() or sidecar.read_text().strip() != _sha256(path):
        if discard_invalid:
            path.unlink(missing_ok=True)
            sidecar.unlink(missing_ok=True)
        return None
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != "meta"}
        meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
    os.utime(path)  # last use, for least-recently-used eviction
    return arrays, meta


DEFAULT_CACHE_MAX_BYTES = 5 * 1024**3


def cache_max_bytes() -> int:
    return int(os.environ.get("PTM_CACHE_MAX_BYTES", DEFAULT_CACHE_MAX_BYTES))


def enforce_cache_cap(kind: str, max_bytes: int | None = None) -> list[Path]:
    """Delete least-recently-used npz files of `kind` until the folder fits under the cap."""
    limit = cache_max_bytes() if max_bytes is None else max_bytes
    files = sorted(artifact_dir(kind).glob("*.npz"), key=lambda p: p.stat().st_mtime)
    total = sum(p.stat().st_size for p in files)
    evicted = []
    for path in files[:-1]:  # never the newest: it is what was just asked for
        if total <= limit:
            break
        total -= path.stat().st_size
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".sha256").unlink(missing_ok=True)
        evicted.append(path)
    return evicted

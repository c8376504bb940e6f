"""The artifact cache: npz files under the data folder, written atomically, checked by their embedded checksum."""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ptm_core.base.files import evict, clean_stale_temp, sha256, stat_or_none, touch, write_atomically
from ptm_core.base.limits import cache_max_bytes
from ptm_core.base.paths import data_dir


def artifact_dir(kind: str) -> Path:
    path = data_dir() / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


# A written npz carries its own SHA-256 as the zip comment, the last bytes of the file: data and checksum
# travel in one file and one rename, so racing writers of a key can never pair one's data with the other's
# checksum (a separate sidecar, written after the rename, could). numpy and zipfile read the comment as a comment.
SEAL = b"ptm-sha256:"
SEAL_BYTES = len(SEAL) + 64


def _digest_of_prefix(handle, n: int) -> str:
    digest, left = hashlib.sha256(), n
    handle.seek(0)
    while left > 0 and (block := handle.read(min(1 << 20, left))):
        digest.update(block)
        left -= len(block)
    return digest.hexdigest()


def _seal(path: Path) -> None:
    """Put the SHA-256 of everything before it into the file's zip comment (fixed length, so it can be patched)."""
    with zipfile.ZipFile(path, "a") as archive:
        archive.comment = SEAL + b"0" * 64
    with open(path, "r+b") as handle:
        size = os.fstat(handle.fileno()).st_size
        checksum = _digest_of_prefix(handle, size - SEAL_BYTES)
        handle.seek(size - 64)
        handle.write(checksum.encode())
        handle.flush()
        os.fsync(handle.fileno())


def _sealed_ok(handle) -> bool | None:
    """Whether an open npz matches its embedded checksum; None when it has none (an entry from before seals)."""
    size = os.fstat(handle.fileno()).st_size
    if size < SEAL_BYTES:
        return None
    handle.seek(size - SEAL_BYTES)
    tail = handle.read(SEAL_BYTES)
    if not tail.startswith(SEAL):
        return None
    return _digest_of_prefix(handle, size - SEAL_BYTES) == tail[len(SEAL):].decode("ascii", "replace")


def npz_intact(path: Path) -> bool:
    """Whether an npz this module wrote is whole: its embedded checksum, or for older entries its sidecar."""
    try:
        with open(path, "rb") as handle:
            sealed = _sealed_ok(handle)
            if sealed is not None:
                return sealed
    except OSError:
        return False
    sidecar = path.with_name(path.name + ".sha256")
    try:
        return sidecar.read_text().strip() == sha256(path)
    except OSError:
        return False


def save_npz(path: Path, meta: dict | None = None, **arrays: np.ndarray) -> Path:
    """Write arrays (+ a JSON meta blob) with their checksum inside, atomically (temp file + one rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, meta=np.array(json.dumps(meta or {})), **arrays)
        _seal(Path(tmp))

    write_atomically(path, write)
    # An older entry's sidecar would only mislead whoever reads this file with an older version.
    path.with_name(path.name + ".sha256").unlink(missing_ok=True)
    return path


def _same_file(path: Path, handle) -> bool:
    found = stat_or_none(path)
    return found is not None and found.st_ino == os.fstat(handle.fileno()).st_ino


def _read_npz(handle) -> tuple[dict[str, np.ndarray], dict]:
    handle.seek(0)
    with np.load(handle, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != "meta"}
        meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
    return arrays, meta


def load_npz(path: Path, discard_invalid: bool = True) -> tuple[dict[str, np.ndarray], dict] | None:
    """Arrays and meta, or None when missing or when the checksum does not match.

    The file is checked and read through one open handle, so a writer replacing it meanwhile cannot make
    us check one version and load another. A cache entry that fails its checksum is deleted so it gets
    recomputed; a file the user named (`discard_invalid=False`) is left alone.
    """
    path = Path(path)
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return None
    with handle:
        sealed = _sealed_ok(handle)
        if sealed is None:  # written before seals: its sidecar says what it should be
            sidecar = path.with_name(path.name + ".sha256")
            sealed = sidecar.exists() and sidecar.read_text().strip() == _digest_of_prefix(
                handle, os.fstat(handle.fileno()).st_size)
        if not sealed:
            if discard_invalid and _same_file(path, handle):  # not a valid entry another writer just put there
                path.unlink(missing_ok=True)
                path.with_name(path.name + ".sha256").unlink(missing_ok=True)
            return None
        loaded = _read_npz(handle)
    touch(path)  # last use, for least-recently-used eviction
    return loaded


def enforce_cache_cap(kind: str, max_bytes: int | None = None) -> list[Path]:
    """Delete least-recently-used npz files of `kind` until the folder fits under the cap.

    Never fails a run: files another process removes meanwhile are simply gone already.
    """
    limit = cache_max_bytes() if max_bytes is None else max_bytes
    folder = artifact_dir(kind)
    clean_stale_temp(folder)
    return evict(list(folder.glob("*.npz")), limit, None)



"""Atomic npz artifacts on disk: written to a temp file and renamed, checked by their embedded checksum on read."""
from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from ptm_core.limits import cache_max_bytes
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


def _umask() -> int:
    try:  # Linux reports it without changing it; os.umask() sets it process-wide, racing other threads
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temp_beside(path: Path) -> str:
    """A temp file next to `path` with the permissions a plain open() would give (mkstemp's are 0600)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    return tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = temp_beside(path)
    fd = os.open(tmp, os.O_WRONLY)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        return sidecar.read_text().strip() == _sha256(path)
    except OSError:
        return False


def save_npz(path: Path, meta: dict | None = None, **arrays: np.ndarray) -> Path:
    """Write arrays (+ a JSON meta blob) with their checksum inside, atomically (temp file + one rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path)
    try:
        with open(tmp, "wb") as handle:
            np.savez(handle, meta=np.array(json.dumps(meta or {})), **arrays)
        _seal(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # An older entry's sidecar would only mislead whoever reads this file with an older version.
    path.with_name(path.name + ".sha256").unlink(missing_ok=True)
    return path


def _same_file(path: Path, handle) -> bool:
    found = _stat_or_none(path)
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


STALE_TEMP_S = 3600.0  # a `.name.xxxx.tmp` this old belongs to a writer that was killed
DIR_GRACE_S = 3600.0  # an extracted dataset or upload used this recently is not evicted


def touch(path: Path) -> None:
    """Mark as used now, for least-recently-used eviction; a file removed meanwhile is fine."""
    try:
        os.utime(path)
    except FileNotFoundError:
        pass


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:  # another process evicted or replaced it just now
        return None


def _tree_bytes(path: Path) -> int:
    if not path.is_dir() or path.is_symlink():
        found = _stat_or_none(path)
        return found.st_size if found else 0
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            found = _stat_or_none(Path(dirpath) / name)
            total += found.st_size if found else 0
    return total


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".sha256").unlink(missing_ok=True)


def _evict(entries: list[Path], limit: int, keep: Path | None, grace_s: float = 0.0) -> list[Path]:
    """Remove least-recently-used entries until the rest fit; tolerant of entries vanishing meanwhile.

    Entries used within `grace_s` stay even above the cap: a running job may still be reading them.
    """
    now = time.time()
    stats = {p: s for p in entries if (s := _stat_or_none(p)) is not None}
    ordered = sorted(stats, key=lambda p: stats[p].st_mtime)
    sizes = {p: _tree_bytes(p) for p in ordered}
    total, evicted = sum(sizes.values()), []
    keep = keep if keep is not None else (ordered[-1] if ordered else None)  # default: the newest
    for path in ordered:
        if total <= limit:
            break
        if path == keep or now - stats[path].st_mtime < grace_s:
            continue
        _remove(path)
        total -= sizes[path]
        evicted.append(path)
    return evicted


def clean_stale_temp(folder: Path) -> None:
    """Remove temp files of atomic writes whose writer died (kill -9) before renaming them."""
    for tmp in folder.glob(".*.tmp"):
        found = _stat_or_none(tmp)
        if found is not None and time.time() - found.st_mtime > STALE_TEMP_S:
            tmp.unlink(missing_ok=True)


def enforce_cache_cap(kind: str, max_bytes: int | None = None) -> list[Path]:
    """Delete least-recently-used npz files of `kind` until the folder fits under the cap.

    Never fails a run: files another process removes meanwhile are simply gone already.
    """
    limit = cache_max_bytes() if max_bytes is None else max_bytes
    folder = artifact_dir(kind)
    clean_stale_temp(folder)
    return _evict(list(folder.glob("*.npz")), limit, None)


def enforce_dir_cap(folder: Path, keep: Path | None = None, max_bytes: int | None = None) -> list[Path]:
    """The cache cap for folders of extracted datasets or uploads: LRU entries (folders or files) go.

    Each load touches its entry; one used in the last DIR_GRACE_S may still be read by a running job.
    """
    limit = cache_max_bytes() if max_bytes is None else max_bytes
    return _evict([p for p in folder.iterdir() if not p.name.startswith(".")], limit, keep, DIR_GRACE_S)

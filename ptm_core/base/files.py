"""Safe files: atomic writes (temp file, fsync, one rename), checksums, and least-recently-used eviction."""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from ptm_core.base.limits import cache_max_bytes


def sha256(path: Path) -> str:
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
    return sha256(Path(path))


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


def write_atomically(path: Path, write: Callable[[str], None]) -> None:
    """`write(tmp)` fills a temp file beside `path`; it is fsynced, then renamed over `path` (or removed on failure).

    A reader sees the old file or the whole new one, never half of it, even after a crash.
    """
    tmp = temp_beside(path)
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    write_atomically(Path(path), lambda tmp: Path(tmp).write_bytes(data))


STALE_TEMP_S = 3600.0  # a `.name.xxxx.tmp` this old belongs to a writer that was killed
DIR_GRACE_S = 3600.0  # an extracted dataset or upload used this recently is not evicted


def touch(path: Path) -> None:
    """Mark as used now, for least-recently-used eviction; a file removed meanwhile is fine."""
    try:
        os.utime(path)
    except FileNotFoundError:
        pass


def stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:  # another process evicted or replaced it just now
        return None


def tree_bytes(path: Path) -> int:
    if not path.is_dir() or path.is_symlink():
        found = stat_or_none(path)
        return found.st_size if found else 0
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            found = stat_or_none(Path(dirpath) / name)
            total += found.st_size if found else 0
    return total


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".sha256").unlink(missing_ok=True)


def evict(entries: list[Path], limit: int, keep: Path | None, grace_s: float = 0.0) -> list[Path]:
    """Remove least-recently-used entries until the rest fit; tolerant of entries vanishing meanwhile.

    Entries used within `grace_s` stay even above the cap: a running job may still be reading them.
    """
    now = time.time()
    stats = {p: s for p in entries if (s := stat_or_none(p)) is not None}
    ordered = sorted(stats, key=lambda p: stats[p].st_mtime)
    sizes = {p: tree_bytes(p) for p in ordered}
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
        found = stat_or_none(tmp)
        if found is not None and time.time() - found.st_mtime > STALE_TEMP_S:
            tmp.unlink(missing_ok=True)


def enforce_dir_cap(folder: Path, keep: Path | None = None, max_bytes: int | None = None) -> list[Path]:
    """The cache cap for folders of extracted datasets or uploads: LRU entries (folders or files) go.

    Each load touches its entry; one used in the last DIR_GRACE_S may still be read by a running job.
    """
    limit = cache_max_bytes() if max_bytes is None else max_bytes
    return evict([p for p in folder.iterdir() if not p.name.startswith(".")], limit, keep, DIR_GRACE_S)

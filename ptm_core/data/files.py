"""Reading a user's file by path without trusting that the path still means what it did.

Files are listed (and checked) once and read later; in between, one can be swapped for a
symlink to a secret, a named pipe that blocks forever, or a 30 GB sparse file. So every read
resolves and re-checks the path, opens without following a final symlink and without
blocking, then checks on the open descriptor that it is a regular file, within the size
limit, and the very file (device, inode, size, mtime) that was listed.
"""
from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ptm_core.base.errors import PTMError
from ptm_core.base.limits import FILE_BYTES_ENV, max_file_bytes, mb
from ptm_core.base.messages import M_, Message

_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_KINDS = {stat.S_IFIFO: M_("a named pipe"), stat.S_IFSOCK: M_("a socket"), stat.S_IFCHR: M_("a device"),
          stat.S_IFBLK: M_("a device"), stat.S_IFDIR: M_("a folder"), stat.S_IFLNK: M_("a symbolic link")}
_OTHER_KIND = M_("a special file")


class FileRejected(PTMError):
    """A file that cannot be used; the message is the reason, fit for a skip list."""


@dataclass(frozen=True)
class FileStamp:
    """What identifies one version of one file: a swapped or rewritten file has another stamp."""

    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> "FileStamp":
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def within(path: Path, roots: list[Path] | tuple[Path, ...]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


@dataclass(frozen=True)
class Roots:
    """Where a dataset's files may resolve to: inside one of `inside` and inside none of `private`.

    `private` is the app's own storage (caches, every session's uploads and extractions): an allowed
    root may contain it, a user's folder may link into it, and neither makes it anyone's data.
    """

    inside: tuple[Path, ...]
    private: tuple[Path, ...] = ()

    def refusal(self, real: Path) -> Message | None:
        """Why a resolved path may not be read, or None."""
        if not within(real, self.inside):
            return M_("a link to outside the allowed folders")
        if within(real, self.private):
            return M_("inside PTM Explorer's own data folder (not user data)")
        return None


def over_size_limit(limit: int) -> Message:
    """The reason for a file over `limit` bytes whose own size is not known (grown since, or declared by a zip)."""
    return M_("too large (over the {limit} MB limit set by {env})", limit=mb(limit), env=FILE_BYTES_ENV)


def regular_file_problem(st: os.stat_result, limit: int) -> Message | None:
    """Why a file with this stat cannot be read whole, or None (a Message: the interface words it)."""
    if not stat.S_ISREG(st.st_mode):
        return M_("not a regular file ({kind})", kind=_KINDS.get(stat.S_IFMT(st.st_mode), _OTHER_KIND))
    if st.st_size > limit:
        return M_("too large ({size} MB, over the {limit} MB limit set by {env})", size=mb(st.st_size), limit=mb(limit),
                  env=FILE_BYTES_ENV)
    return None


def _open_checked(path: Path, allowed: Roots | None) -> int:
    real = path.resolve()
    refusal = allowed.refusal(real) if allowed is not None else None
    if refusal is not None:
        raise FileRejected(refusal)
    try:
        return os.open(real, _FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # became a symlink after being resolved: swapped under us
            raise FileRejected(M_("changed while being opened (now a symbolic link)")) from None
        raise FileRejected(M_("unreadable file ({error})", error=str(exc.strerror or exc))) from None


def read_user_file(path: Path, allowed: Roots | None = None, expect: FileStamp | None = None,
                   limit: int | None = None) -> tuple[bytes, FileStamp]:
    """The file's bytes and stamp, or FileRejected with the reason (never blocks, never follows out)."""
    limit = max_file_bytes() if limit is None else limit
    fd = _open_checked(Path(path), allowed)
    try:
        st = os.fstat(fd)
        problem = regular_file_problem(st, limit)
        if problem is not None:
            raise FileRejected(problem)
        if expect is not None and FileStamp.of(st) != expect:
            raise FileRejected(M_("changed since the dataset was loaded (reload it to use the new file)"))
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise FileRejected(M_("unreadable file ({error})", error=str(exc.strerror or exc))) from None
    finally:
        os.close(fd)
    if len(data) > limit:  # grew after fstat
        raise FileRejected(over_size_limit(limit))
    return data, FileStamp.of(st)

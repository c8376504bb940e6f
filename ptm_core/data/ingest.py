"""Getting user data in without trusting it: allowed roots, safe zip extraction, uploads (the checks of a zip's
entries: ptm_core.data.zip_checks).

A zip is checked entry by entry from its central directory before a byte is written
(paths, symlinks, sizes, compression ratios), then extracted into a private temp dir with
the same limits counted on the bytes actually written, and only then renamed into place.
So a hostile archive (a bomb, a path out of the target, a link) is refused whole and leaves nothing
behind, while an entry that is merely unusable (a name no file system holds, a password, corrupt
data) is skipped and listed, as an unreadable file in a folder would be.
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

from ptm_core.base.messages import M_
from ptm_core.base.files import atomic_write_bytes, clean_stale_temp, enforce_dir_cap, file_sha256, touch
from ptm_core.base.errors import PTMError
from ptm_core.data.completion import is_complete, write_marker
from ptm_core.data.files import within
from ptm_core.data.imaging import first_line
from ptm_core.data.zip_checks import (RATIO_MIN_BYTES, SKIPPED_FILE, ZIP_BYTES_ENV, ZIP_FILES_ENV,  # noqa: F401
                                      Budget, check_members, entry_name, entry_problem, member_parts, ratio_too_high,
                                      zip_budget)
from ptm_core.base.limits import LOAD_BYTES_ENV, env_int, max_load_bytes, mb
from ptm_core.base.paths import check_path_text, data_dir
from ptm_core.base.uploads import remember_name

ROOTS_ENV = "PTM_ALLOWED_ROOTS"
UPLOAD_ENV = "PTM_UPLOAD_MAX_BYTES"
DEFAULT_UPLOAD_BYTES = 500 * 1024**2
STALE_TEMP_S = 3600.0  # an extraction temp folder whose owner is gone, or this old, is debris
_CHUNK = 1024**2
# Errors that concern one entry's name or place, not the disk or the archive as a whole.
_NAME_ERRNOS = {errno.ENAMETOOLONG: M_("a name too long for this file system"),
                errno.EILSEQ: M_("a name this file system cannot hold"),
                errno.EINVAL: M_("a name this file system cannot hold"),
                errno.EEXIST: M_("another entry has the same name"),
                errno.ENOTDIR: M_("its path clashes with another entry (a file where a folder is)"),
                errno.EISDIR: M_("its path clashes with another entry (a folder where a file is)")}
_STORED_UPLOAD = re.compile(r"[0-9a-f]{64}\.zip")


# --------------------------------------------------------------------------- allowed roots

def allowed_roots() -> list[Path]:
    """The data dir (uploads and extracted zips live there) plus `$PTM_ALLOWED_ROOTS`, else the cwd."""
    listed = [p.strip() for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p.strip()]
    extra = [Path(p) for p in listed] if listed else [Path.cwd()]
    return [root.expanduser().resolve() for root in [data_dir(), *extra]]


def private_roots() -> tuple[Path, ...]:
    """The app's own storage: caches, and every session's uploads and extracted zips. It is an allowed root
    only so that `ingest_upload`'s zips load; it is never a user's folder."""
    return (data_dir().resolve(),)


def _own_storage(path: str | os.PathLike, what: str) -> PTMError:
    return PTMError(M_("{path} is inside PTM Explorer's own data folder ({folder}), which holds caches and every "
                       "session's uploads, not your data; point {what} at your own files (or upload a zip).",
                       path=str(path), folder=str(private_roots()[0]), what=what))


def ensure_user_folder(path: str | os.PathLike, what: str = "The folder path") -> Path:
    """`ensure_allowed`, and never the data folder or anything in it, however it is spelled (links, `..`)."""
    resolved = ensure_allowed(path, what)
    if within(resolved, private_roots()):
        raise _own_storage(path, "folder:")
    return resolved


def ensure_user_zip(path: str | os.PathLike, what: str = "The zip path") -> Path:
    """`ensure_allowed`; inside the data folder only a zip `ingest_upload` stored (named by its content's hash,
    so only whoever has its bytes can name it): not an extraction's file, a cache entry, another file there."""
    resolved = ensure_allowed(path, what)
    stored_upload = resolved.parent == private_roots()[0] / "uploads" and _STORED_UPLOAD.fullmatch(resolved.name)
    if within(resolved, private_roots()) and not stored_upload:
        raise _own_storage(path, "zip:")
    return resolved


def ensure_allowed(path: str | os.PathLike, what: str = "The path") -> Path:
    """The resolved path (symlinks followed), or a PTMError if it lies outside every allowed root
    (or names what no file system holds: a NUL, a name over 255 bytes)."""
    check_path_text(path, what)
    resolved = Path(path).expanduser().resolve()
    roots = allowed_roots()
    if not within(resolved, roots):
        shown = os.pathsep.join(str(r) for r in roots)
        raise PTMError(M_("{path} is outside the allowed folders ({shown}); add its folder to {env} "
                          "('{sep}'-separated) to use it.", path=str(path), shown=shown, env=ROOTS_ENV, sep=os.pathsep))
    return resolved


# --------------------------------------------------------------------------- extraction

def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, budget: Budget, archive: str) -> None:
    written = 0
    # "xb": a duplicate entry name must not silently replace an earlier file.
    with zf.open(info) as src, open(dest, "xb") as out:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            budget.add_bytes(len(chunk), archive)
            if written > info.file_size or ratio_too_high(written, info.compress_size):
                raise PTMError(f"Zip {archive} rejected: entry '{info.filename}' expands beyond what it declares.")
            out.write(chunk)


class _Skip(Exception):
    """An entry left out, with the reason."""


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: Budget, archive: str) -> None:
    """One entry to `target`; `_Skip` for a failure that concerns this entry alone."""
    try:
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            return
        budget.add_file(archive)
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy_member(zf, info, target, budget, archive)
    except OSError as exc:
        if exc.errno not in _NAME_ERRNOS:
            raise  # disk full, permissions: the archive as a whole cannot be extracted here
        raise _Skip(_NAME_ERRNOS[exc.errno]) from None
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        # bad CRC, truncated or garbled data, a compression method zipfile lacks: this entry only
        if target.is_file():
            target.unlink()
        raise _Skip(M_("unreadable in the zip ({error})", error=first_line(exc))) from None


def _extract_members(zf: zipfile.ZipFile, dest: Path, archive: str, archive_bytes: int) -> list[tuple[str, str]]:
    """Extract what can be; returns (entry name, reason) for each entry skipped."""
    budget, root, skipped = zip_budget(archive_bytes), dest.resolve(), []
    for info in zf.infolist():
        parts, problem = member_parts(info, archive), entry_problem(info)
        if problem is not None:
            skipped.append((entry_name(info), problem))
            continue
        target = root.joinpath(*parts)
        if not target.resolve().is_relative_to(root):  # belt and braces after member_parts
            raise PTMError(f"Zip {archive} rejected: entry '{info.filename}' resolves outside the target.")
        try:
            _extract_member(zf, info, target, budget, archive)
        except _Skip as skip:
            skipped.append((entry_name(info), skip.args[0]))  # the Message, for the page's language
    return skipped


def extraction_skips(folder: Path) -> list[tuple[str, str]]:
    """The entries an extraction left out, with reasons (none for extractions made before this was kept)."""
    try:
        return [(str(name), str(reason)) for name, reason in json.loads((folder / SKIPPED_FILE).read_text())]
    except (OSError, ValueError, TypeError):
        return []


def _publish(tmp: Path, target: Path) -> None:
    """Rename the finished extraction into place; losing a race to an identical one is fine."""
    try:
        os.rename(tmp, target)
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _check_again(path: Path) -> None:
    """An extraction reused after PTM_ZIP_MAX_FILES or _BYTES was lowered must meet today's limits too."""
    try:
        with zipfile.ZipFile(path) as zf:
            check_members(zf.infolist(), path.name, path.stat().st_size)
    except (zipfile.BadZipFile, OSError) as exc:
        raise PTMError(M_("{name} is not a readable zip file ({reason}).", name=path.name,
                          reason=first_line(exc))) from None


def _unzip_into(path: Path, tmp: Path) -> None:
    archive, size = path.name, path.stat().st_size
    try:
        with zipfile.ZipFile(path) as zf:
            check_members(zf.infolist(), archive, size)
            skipped = _extract_members(zf, tmp, archive, size)
        # Written last, always: it replaces any entry of that name, so a zip cannot forge its own skip list.
        (tmp / SKIPPED_FILE).write_text(json.dumps(skipped))
        write_marker(tmp)  # last: only a finished extraction is marked complete
    except PTMError:
        raise
    except zipfile.BadZipFile as exc:
        raise PTMError(f"{archive} is not a valid zip file ({exc}).") from None
    except (RuntimeError, NotImplementedError, zlib.error, EOFError, OSError) as exc:
        # encrypted entries, unsupported compression, truncated data, disk full, name clashes
        raise PTMError(f"Zip {archive} could not be extracted: {first_line(exc)}.") from None


def _owner_gone(folder: Path) -> bool:
    """Whether the process named in a temp folder `.<sha12>-<pid>-xxxx` has exited (or it is old)."""
    parts = folder.name.split("-")
    if len(parts) >= 3 and parts[1].isdecimal():
        try:
            os.kill(int(parts[1]), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, OverflowError):
            pass
    try:
        return time.time() - folder.stat().st_mtime > STALE_TEMP_S
    except FileNotFoundError:
        return False


def clean_stale_extractions(folder: Path | None = None) -> list[Path]:
    """Remove half-written extraction temp folders left by a killed process; returns what went."""
    folder = folder or data_dir() / "datasets"
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if p.name.startswith(".") and p.is_dir() and _owner_gone(p)]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def extract_zip(path: Path) -> Path:
    """`data_dir()/datasets/<sha256 of the zip>/`, extracted once (atomically) and reused after."""
    target = data_dir() / "datasets" / file_sha256(path)
    if target.is_dir() and not target.is_symlink() and is_complete(target):
        try:
            _check_again(path)
        except PTMError:
            discard_extraction(target)  # refused today: its unpacked bytes must not stay
            raise
        touch(target)
        return target
    try:
        _make_room(target)
        return _extract_new(path, target)
    except OSError as exc:  # a read-only or full disk, a name the file system refuses
        raise PTMError(f"Zip {path.name} could not be unpacked into {target.parent} ({exc.strerror or exc}); "
                       f"free or fix that folder, or point PTM_DATA_DIR at another.") from None


def _make_room(target: Path) -> None:
    """The extraction's place made ready: a file or link where its folder belongs (nothing this program
    writes; it failed every later run) is removed, a file where `datasets/` belongs is refused in one line, and
    an incomplete extraction (files missing after a killed clean-up, or no marker: an older version) is set
    aside to be extracted again."""
    parent = target.parent
    if parent.exists() and not parent.is_dir():
        raise PTMError(f"{parent} is a file, where PTM Explorer keeps unpacked zips; move it away and try again.")
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        target.unlink()
    parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir():
        _set_aside(target)


def _extract_new(path: Path, target: Path) -> Path:
    clean_stale_extractions(target.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name[:12]}-{os.getpid()}-", dir=target.parent))
    try:
        _unzip_into(path, tmp)
        _publish(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    enforce_dir_cap(target.parent, keep=target)
    return target


def _set_aside(target: Path) -> None:
    """Move an incomplete extraction out of the way (readers then miss it whole), then remove it."""
    aside = target.with_name(f".{target.name[:12]}-{os.getpid()}-incomplete-{time.monotonic_ns()}")
    try:
        os.rename(target, aside)
    except FileNotFoundError:  # another process set it aside first
        return
    shutil.rmtree(aside, ignore_errors=True)


def discard_extraction(folder: Path) -> None:
    """Remove an extraction whose dataset was refused: it must not sit on disk unused."""
    shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- packed files

def check_packed_file(path: Path, what: str) -> None:
    """Bound a file the user names directly (npz, torch zip checkpoint) like an upload, before loading.

    Both formats are zip containers that numpy/torch inflate whole into memory: a 1.6 MB npz can
    declare 1.6 GB. The file size, the declared total and each entry's ratio are all checked.
    """
    limit, size = max_load_bytes(), path.stat().st_size
    too_big = f"{what} {path.name} is {{}} MB, over the {mb(limit)} MB limit ({LOAD_BYTES_ENV})"
    if size > limit:
        raise PTMError(too_big.format(mb(size)) + ".")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError):
        return  # not a zip (legacy torch pickle, safetensors): it cannot expand beyond its size
    total = sum(info.file_size for info in infos)
    if total > limit:
        raise PTMError(too_big.format(mb(total)) + " once unpacked.")
    for info in infos:
        if ratio_too_high(info.file_size, info.compress_size):
            raise PTMError(f"{what} {path.name} rejected: entry '{info.filename}' expands "
                           f"{info.file_size // max(info.compress_size, 1):,}:1 (compression bomb?).")


# --------------------------------------------------------------------------- uploads

def upload_limit_bytes() -> int:
    """The largest upload the engine takes (PTM_UPLOAD_MAX_BYTES); the app's upload widgets show it too."""
    return env_int(UPLOAD_ENV, DEFAULT_UPLOAD_BYTES)


def ingest_upload(data: bytes, name: str) -> str:
    """Save an uploaded zip under `data_dir()/uploads/<sha>.zip`; returns the `zip:PATH` spec."""
    limit = upload_limit_bytes()
    if len(data) > limit:
        raise PTMError(M_("{name}: upload is {size} MB, over the {limit} MB limit ({env}).", name=name,
                          size=mb(len(data)), limit=mb(limit), env=UPLOAD_ENV))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            check_members(zf.infolist(), name, len(data))  # refuse bombs now, not when first loaded
    except zipfile.BadZipFile:
        raise PTMError(M_("{name} is not a zip file; upload a .zip of class folders or images plus a labels CSV.",
                          name=name)) from None
    folder = data_dir() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    clean_stale_temp(folder)  # half-written uploads of a killed server
    path = folder / f"{hashlib.sha256(data).hexdigest()}.zip"
    if path.exists():
        touch(path)  # used again: last in line for eviction
    else:
        atomic_write_bytes(path, data)
    remember_name(path, name)  # titles name the upload by it, not by its hash (base.uploads)
    enforce_dir_cap(folder, keep=path)
    return f"zip:{path}"

"""Checks of a zip's entries from its central directory, before a byte is written: paths that could land outside
the target, links, sizes and compression ratios (the archive is refused whole), and entries that are harmless but
unusable (skipped and listed), with the running budget that extraction counts the bytes actually written against.
"""
from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass

from ptm_core.base.errors import PTMError
from ptm_core.base.limits import MAX_RATIO, env_int, mb
from ptm_core.base.messages import M_, Message
from ptm_core.base.paths import NAME_MAX
from ptm_core.base.text import printable

ZIP_BYTES_ENV = "PTM_ZIP_MAX_BYTES"
ZIP_FILES_ENV = "PTM_ZIP_MAX_FILES"
DEFAULT_ZIP_BYTES = 2 * 1024**3
DEFAULT_ZIP_FILES = 200_000
# Tiny entries (empty files, short text) compress absurdly well and are harmless one by one; many of
# them together are caught by the whole-archive ratio, which counts every byte.
RATIO_MIN_BYTES = 64 * 1024
_DRIVE_PATH = re.compile(r"^[A-Za-z]:[\\/]")  # C:/x or C:\x: absolute on Windows
_SYMLINK = 0o120000
SKIPPED_FILE = ".ptm-skipped.json"  # entries left out, with reasons, at the extraction's root (hidden: not data)


@dataclass
class Budget:
    """Bytes and files actually written, checked as they grow (headers can lie)."""

    max_bytes: int
    max_files: int
    archive_bytes: int = 0  # size of the zip itself, for the whole-archive ratio; 0: unknown
    bytes: int = 0
    files: int = 0

    def add_bytes(self, n: int, archive: str) -> None:
        self.bytes += n
        if self.bytes > self.max_bytes:
            raise PTMError(f"Zip {archive} unpacks to over {mb(self.max_bytes)} MB ({ZIP_BYTES_ENV}); refused.")
        if self.archive_bytes and ratio_too_high(self.bytes, self.archive_bytes):
            raise PTMError(f"Zip {archive} rejected: it expands over {MAX_RATIO}:1 as a whole (zip bomb?).")

    def add_file(self, archive: str) -> None:
        self.files += 1
        if self.files > self.max_files:
            raise PTMError(f"Zip {archive} has over {self.max_files:,} files ({ZIP_FILES_ENV}); refused.")


def zip_budget(archive_bytes: int = 0) -> Budget:
    return Budget(env_int(ZIP_BYTES_ENV, DEFAULT_ZIP_BYTES), env_int(ZIP_FILES_ENV, DEFAULT_ZIP_FILES), archive_bytes)


def member_parts(info: zipfile.ZipInfo, archive: str) -> tuple[str, ...]:
    """Path components of an entry, refusing anything that could land outside the target.

    A colon is only a drive where it starts a Windows path ("C:/x"); "a: apples" is a folder name on
    POSIX, and on Windows (where a colon names a drive or a stream) `entry_problem` skips it.
    """
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or _DRIVE_PATH.match(name):
        raise PTMError(f"Zip {archive} rejected: entry '{info.orig_filename}' has an absolute path.")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise PTMError(f"Zip {archive} rejected: entry '{info.orig_filename}' climbs out with '..'.")
    return parts


def entry_name(info: zipfile.ZipInfo) -> str:
    """An entry's name as a skip list shows it: controls escaped, a NUL included, a very long one shortened."""
    name = printable(info.orig_filename)
    return name if len(name) <= 120 else f"{name[:60]}...{name[-40:]} ({len(name)} characters)"


def entry_problem(info: zipfile.ZipInfo) -> Message | None:
    """Why an entry, harmless but unusable, is skipped (never extracted) rather than refusing the zip; a Message,
    so the interface words it in its language."""
    if "\x00" in info.orig_filename:  # zipfile cuts the name at the NUL: extracting would rename the file
        return M_("its name holds a NUL byte")
    if info.flag_bits & 0x1:
        return M_("encrypted (password-protected); zip the files again without a password")
    parts = [p for p in info.filename.replace("\\", "/").split("/") if p not in ("", ".")]
    if parts and parts[0] == SKIPPED_FILE:
        return M_("a name PTM Explorer keeps for its own list of skipped entries")
    if any(len(os.fsencode(p)) > NAME_MAX for p in parts):
        return M_("a name over {limit} bytes, more than a file system holds", limit=NAME_MAX)
    if os.name == "nt" and any(":" in p for p in parts):
        return M_("a ':' in its name, which Windows does not allow")
    return None


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    # Whatever system wrote it: the Unix mode in the high bits is what an extractor would honour.
    return (info.external_attr >> 16) & 0o170000 == _SYMLINK


def ratio_too_high(unpacked: int, packed: int) -> bool:
    return unpacked >= RATIO_MIN_BYTES and unpacked > MAX_RATIO * max(packed, 1)


def check_members(infos: list[zipfile.ZipInfo], archive: str, archive_bytes: int = 0) -> None:
    """Refuse the whole archive from its central directory, before anything is extracted.

    Every entry's ratio is checked, and the whole archive's: 2,000 entries of 1 MiB of zeros
    are each unremarkable but together turn 2 MB into 2 GB.
    """
    budget = zip_budget(archive_bytes)
    if len(infos) > budget.max_files:
        raise PTMError(f"Zip {archive} has {len(infos):,} entries, over the {budget.max_files:,} limit ({ZIP_FILES_ENV}).")
    for info in infos:
        member_parts(info, archive)
        if _is_symlink(info):
            raise PTMError(f"Zip {archive} rejected: entry '{info.filename}' is a symbolic link.")
        if ratio_too_high(info.file_size, info.compress_size):
            ratio = info.file_size // max(info.compress_size, 1)
            raise PTMError(f"Zip {archive} rejected: entry '{info.filename}' expands {ratio:,}:1 (zip bomb?).")
    total = sum(info.file_size for info in infos)
    if archive_bytes and ratio_too_high(total, archive_bytes):
        raise PTMError(f"Zip {archive} rejected: it expands {total // archive_bytes:,}:1 as a whole (zip bomb?).")
    if total > budget.max_bytes:
        raise PTMError(
            f"Zip {archive} unpacks to {mb(total)} MB, over the {mb(budget.max_bytes)} MB limit ({ZIP_BYTES_ENV})."
        )

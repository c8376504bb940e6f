"""An extracted zip is complete or not used: a marker listing every file and its size, written last.

Extraction happens in a temp folder renamed into place, but what is in place can still lose files
afterwards (a clean-up killed half-way, eviction racing a reader, a person tidying up). A folder
missing a file would load as a smaller dataset without a word, so before reuse every listed file
is checked (exists, regular, same size); anything else is extracted again.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from ptm_core.base.files import atomic_write_bytes

MARKER = ".ptm-complete.json"  # hidden: folder listings never take it for data


def write_marker(folder: Path) -> None:
    """Record every file under `folder` with its size; call it when the extraction is finished."""
    files = {}
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            path = Path(dirpath) / name
            if path != folder / MARKER:
                files[path.relative_to(folder).as_posix()] = path.lstat().st_size
    atomic_write_bytes(folder / MARKER, json.dumps({"files": files}, sort_keys=True).encode())


def _same(path: Path, size: object) -> bool:
    try:
        found = path.lstat()  # an extraction holds no links: one in its place is not what was written
    except OSError:
        return False
    return stat.S_ISREG(found.st_mode) and found.st_size == size


def is_complete(folder: Path) -> bool:
    """Whether every file the marker lists is there with its size; no marker (killed, or older) is incomplete."""
    try:
        files = json.loads((folder / MARKER).read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(files, dict) and all(_same(folder / rel, size) for rel, size in files.items())

"""Checking an output path before any work is done, so a long run never ends in "cannot write"."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ptm_core.base.errors import PTMError
from ptm_core.base.paths import check_path_text


def check_output(raw: str, suffix: str) -> Path:
    """The output path if a file can be written there now; else one PTMError saying what to fix."""
    if not raw.lower().endswith(suffix):
        raise PTMError(f"--out must name a {suffix} file, got '{raw}'.")
    check_path_text(raw, "--out")
    path = Path(raw).expanduser()
    if path.is_dir():
        raise PTMError(f"--out {raw} is a folder; name a {suffix} file inside it instead.")
    parent = path.parent
    if not parent.is_dir():
        raise PTMError(f"--out {raw}: the folder {parent} does not exist; create it first.")
    try:  # os.access misses read-only mounts and ACLs; a real file is the honest test
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise PTMError(f"--out {raw}: cannot write in {parent} ({exc.strerror or exc}).") from None
    return path

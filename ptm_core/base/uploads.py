"""The names users gave their uploaded zips: stored under a content hash, shown under the file's own name.

An upload is kept as `data_dir()/uploads/<sha256>.zip` (ptm_core.data.ingest.ingest_upload), so the same bytes
are stored once. Its original name ("shapes3.zip") lives beside it in a small JSON sidecar, `.<sha256>.json`
(a dot file, so the uploads' LRU cap never evicts the name apart from its zip), and every title names the
dataset by it, never by the storage path.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ptm_core.base.files import write_atomically
from ptm_core.base.paths import data_dir

NAME_CHARS = 120  # a longer upload name is cut: it is shown in titles and table cells


def uploads_dir() -> Path:
    return data_dir() / "uploads"


def _sidecar(path: Path) -> Path:
    return path.with_name(f".{path.stem}.json")


def clean_name(name: str) -> str:
    """The file's own name without any folders a browser sent, control characters or excess length."""
    base = re.split(r"[\\/]", name)[-1]
    base = re.sub(r"[\x00-\x1f\x7f]", "", base).strip()
    return base[:NAME_CHARS] or "upload.zip"


def remember_name(path: Path, name: str) -> None:
    """Keep `name` beside the stored upload at `path` (written atomically: a reader sees the old name or the new)."""
    text = json.dumps({"name": clean_name(name)})
    write_atomically(_sidecar(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def upload_name(path: str | Path) -> str | None:
    """The original name of the upload stored at `path`; None for any other file (or a sidecar that is unreadable)."""
    try:
        name = json.loads(_sidecar(Path(path)).read_text(encoding="utf-8")).get("name")
    except (OSError, ValueError, AttributeError):
        return None
    return clean_name(name) if isinstance(name, str) else None


def data_name(spec: str) -> str:
    """A dataset spec as people read it: an uploaded zip by its file's name, anything else as written."""
    kind, _, arg = spec.partition(":")
    if kind == "zip" and arg:
        return upload_name(arg) or spec
    return spec


@dataclass(frozen=True)
class Upload:
    name: str  # the file's name as uploaded
    path: str  # where it is stored
    modified: float

    @property
    def spec(self) -> str:
        return f"zip:{self.path}"


def list_uploads() -> list[Upload]:
    """The uploads still stored (the cap may have evicted older ones), newest first, each under its own name."""
    folder = uploads_dir()
    found = []
    for path in folder.glob("*.zip") if folder.is_dir() else []:
        try:
            modified = path.stat().st_mtime
        except OSError:  # evicted meanwhile
            continue
        found.append(Upload(upload_name(path) or path.name, str(path), modified))
    return sorted(found, key=lambda u: -u.modified)

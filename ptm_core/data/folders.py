"""Turning a directory of user images into (file, label) pairs, skipping what cannot be used.

Two layouts: one sub-folder per class, or images plus a single labels CSV
(`filename,label`). Every candidate file is read once, checked cheaply with Pillow and
hashed; anything unusable is listed in `skipped` with a reason instead of failing the load.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from PIL import features

from ptm_core.data.files import FileRejected, FileStamp, Roots, read_user_file, within
from ptm_core.data.imaging import check_image
from ptm_core.base.errors import PTMError
from ptm_core.base.messages import M_

# AVIF only where this Pillow decodes it (Pillow >= 11.3 wheels do); elsewhere an .avif file gets its own reason.
AVIF_SUFFIXES = {".avif"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"} | (
    AVIF_SUFFIXES if features.check("avif") else set())
FILENAME_COLUMN, LABEL_COLUMN = "filename", "label"


@dataclass
class Listing:
    """Candidate images with their class, and the files already known to be unusable."""

    root: Path
    files: list[Path] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    fingerprint: str = ""
    stamps: dict[Path, FileStamp] = field(default_factory=dict)  # each kept file as it was when checked
    private: tuple[Path, ...] = ()  # the app's own storage: never walked into, even when below the root

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def add(self, path: Path, label: str) -> None:
        self.files.append(path)
        self.labels.append(label)

    def skip(self, path: Path | str, reason: str) -> None:
        self.skipped.append((path if isinstance(path, str) else self.rel(path), reason))


def is_hidden(name: str) -> bool:
    """Dot-files, macOS resource forks (`._x.png`, `__MACOSX/`) are tool debris, not user data."""
    return name.startswith(".") or name == "__MACOSX"


def _walk_files(folder: Path, listing: Listing) -> list[Path]:
    """Visible files below `folder`. Symlinked sub-folders are not followed (loops, escapes) and
    unreadable ones cannot be: both go on the skip list, so no folder disappears without a word."""
    found: list[Path] = []

    def unreadable(exc: OSError) -> None:
        listing.skip(Path(exc.filename), f"unreadable folder ({exc.strerror or exc})")

    for dirpath, dirnames, filenames in os.walk(folder, onerror=unreadable):
        base = Path(dirpath)
        visible = sorted(d for d in dirnames if not is_hidden(d))
        for link in (d for d in visible if (base / d).is_symlink()):
            listing.skip(base / link, "a link to a folder (not followed)")
        for own in (d for d in visible if is_private(base / d, listing)):
            listing.skip(base / own, PRIVATE_REASON)
        dirnames[:] = [d for d in visible if not (base / d).is_symlink() and not is_private(base / d, listing)]
        found += [base / f for f in sorted(filenames) if not is_hidden(f)]
    return found


PRIVATE_REASON = "PTM Explorer's own data folder (not read: it holds caches and every session's uploads)"


def is_private(folder: Path, listing: Listing) -> bool:
    return bool(listing.private) and within(folder.resolve(), listing.private)


def _loose_file_reason(entry: Path, csv_count: int, has_folders: bool) -> str:
    if entry.suffix.lower() == ".csv" and csv_count > 1:
        return f"one of {csv_count} CSV files here: a labels CSV must be the only .csv in the folder"
    if has_folders:
        return "not inside a class folder"
    return "not inside a class folder (there are none here)"


def list_class_folders(root: Path, private: tuple[Path, ...] = ()) -> Listing:
    listing = Listing(root, private=private)
    entries = [e for e in sorted(root.iterdir(), key=lambda p: p.name) if not is_hidden(e.name)]
    csv_count = sum(1 for e in entries if e.suffix.lower() == ".csv" and not e.is_dir())
    has_folders = any(e.is_dir() for e in entries)
    # CSVs first: with several of them, that is the likeliest reason nothing was found.
    for entry in sorted(entries, key=lambda e: (e.is_dir() or e.suffix.lower() != ".csv", e.name)):
        if not entry.is_dir():
            listing.skip(entry, _loose_file_reason(entry, csv_count, has_folders))
            continue
        if is_private(entry, listing):
            listing.skip(entry.name + "/", PRIVATE_REASON)
            continue
        files = _walk_files(entry, listing)
        if not files:
            listing.skip(entry.name + "/", "empty class folder: no files, so no class")
        for path in files:
            listing.add(path, entry.name)
    return listing


def _csv_reader(csv_path: Path) -> csv.DictReader:
    try:
        text = read_user_file(csv_path)[0].decode("utf-8-sig")  # Excel writes a BOM
    except FileRejected as exc:
        raise PTMError(f"Could not read labels file {csv_path.name}: {exc}.") from None
    except UnicodeDecodeError:
        raise PTMError(f"Labels file {csv_path.name} is not UTF-8 text; save it as CSV (UTF-8).") from None
    return csv.DictReader(io.StringIO(text))


def _label_columns(reader: csv.DictReader) -> tuple[str, str] | None:
    columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
    if FILENAME_COLUMN in columns and LABEL_COLUMN in columns:
        return columns[FILENAME_COLUMN], columns[LABEL_COLUMN]
    return None


def _read_csv_rows(csv_path: Path) -> list[dict[str, str]]:
    reader = _csv_reader(csv_path)
    names = _label_columns(reader)
    if names is None:
        raise PTMError(
            f"Labels file {csv_path.name} needs a header row with columns {FILENAME_COLUMN},{LABEL_COLUMN}; "
            f"found {','.join(reader.fieldnames or []) or 'none'}."
        )
    fname, label = names
    try:
        return [{"filename": (row.get(fname) or "").strip(), "label": (row.get(label) or "").strip()} for row in reader]
    except csv.Error as exc:  # a field over csv's size limit, a NUL byte, a broken quote
        raise PTMError(f"Labels file {csv_path.name} line {reader.line_num} is not valid CSV ({exc}); "
                       f"expected one filename,label pair per line.") from None


def _resolve_listed(root: Path, base: Path, name: str, by_basename: dict[str, list[Path]]) -> Path | None:
    """A CSV filename relative to the CSV's folder; a bare name may also match a unique file anywhere.

    Normalised lexically, not resolved: `..` or an absolute name cannot leave `root`, and a
    symlink stays a symlink for `verify_listing` to judge by where it points.
    """
    candidate = Path(os.path.normpath(base / name.replace("\\", "/")))
    if candidate.is_relative_to(root) and candidate.is_file():
        return candidate
    matches = by_basename.get(Path(name).name, [])
    return matches[0] if len(matches) == 1 and "/" not in name.replace("\\", "/") else None


def list_labels_csv(root: Path, csv_path: Path, private: tuple[Path, ...] = ()) -> Listing:
    """Images named in the CSV get its labels; images it does not mention are listed as skipped."""
    listing = Listing(root, private=private)
    present = [p for p in _walk_files(root, listing) if p != csv_path]
    by_basename: dict[str, list[Path]] = {}
    for path in present:
        by_basename.setdefault(path.name, []).append(path)
    used: set[Path] = set()
    for number, row in enumerate(_read_csv_rows(csv_path), start=2):
        where = f"{csv_path.name} line {number}"
        if not row["filename"] or not row["label"]:
            listing.skip(where, "empty filename or label")
            continue
        path = _resolve_listed(root, csv_path.parent, row["filename"], by_basename)
        if path is None:
            listing.skip(f"{row['filename']} ({where})", "listed in the labels CSV but not found")
        elif path in used:
            listing.skip(f"{row['filename']} ({where})", "listed twice in the labels CSV")
        else:
            used.add(path)
            listing.add(path, row["label"])
    for path in present:
        if path not in used:
            listing.skip(path, "not in the labels CSV")
    return listing


def find_labels_csv(root: Path) -> Path | None:
    """The single visible .csv directly in `root`, if exactly one is there."""
    found = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() == ".csv" and not is_hidden(p.name)]
    return found[0] if len(found) == 1 else None


def list_images(root: Path, private: tuple[Path, ...] = ()) -> Listing:
    """Pick the layout: a labels CSV when there is one, else one sub-folder per class.

    A stray CSV next to class folders (notes, metadata) must not hijack the layout, so with
    sub-folders present the CSV only counts when it has the filename,label header. Folders in `private`
    (the app's own storage, when the root contains it) are listed as skipped, never walked.
    """
    root = root.resolve()  # one canonical root, so lexical checks on CSV names compare like with like
    csv_path = find_labels_csv(root)
    has_folders = any(p.is_dir() and not is_hidden(p.name) for p in root.iterdir())
    if csv_path and (not has_folders or _has_label_header(csv_path)):
        return list_labels_csv(root, csv_path, private)
    return list_class_folders(root, private)


def _has_label_header(csv_path: Path) -> bool:
    try:
        return _label_columns(_csv_reader(csv_path)) is not None
    except csv.Error:
        return False


def unwrap_single_folder(root: Path) -> Path:
    """Zips are often made of one top-level folder; look inside it when it is all there is."""
    visible = [p for p in root.iterdir() if not is_hidden(p.name)]
    if len(visible) == 1 and visible[0].is_dir():
        return visible[0]
    return root


def _check_file(path: Path, allowed: Roots | None) -> tuple[bytes, FileStamp]:
    """The bytes and stamp of a usable image file, or FileRejected (ImageRejected) with the reason."""
    if path.suffix.lower() in AVIF_SUFFIXES - IMAGE_SUFFIXES:
        raise FileRejected(M_("an AVIF image, which this Pillow cannot decode (install Pillow 11.3 or later)"))
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise FileRejected(M_("not an image file ({suffix})", suffix=path.suffix) if path.suffix else
                           M_("not an image file (no extension)"))
    data, stamp = read_user_file(path, allowed)
    check_image(data)
    return data, stamp


def verify_listing(listing: Listing, allowed: Roots | None = None) -> Listing:
    """Keep only files that decode as images (and stay inside `allowed`); hash and stamp what is kept."""
    kept = Listing(listing.root, skipped=list(listing.skipped))
    digest = hashlib.sha256()
    for path, label in zip(listing.files, listing.labels):
        try:
            data, kept.stamps[path] = _check_file(path, allowed)
        except FileRejected as exc:
            kept.skip(path, exc.message)  # a Message: the page words it in its language
            continue
        kept.add(path, label)
        for part in (kept.rel(path), label):
            digest.update(part.encode() + b"\x00")
        digest.update(hashlib.sha256(data).digest())
    kept.fingerprint = digest.hexdigest()[:16]
    return kept

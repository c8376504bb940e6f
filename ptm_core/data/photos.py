"""Photos a user brings into one session (a camera shot, uploaded files, a zip of them), decoded in memory.

Nothing here touches the disk: the bytes arrive from the browser, are checked like every other image (the size
limit of one file, data/imaging's pixel and aspect limits, a decode of every byte) and shrunk on arrival so the
longest side is at most ARRIVAL_SIDE, which bounds what a session holds (a 12-megapixel shot becomes ~0.6 MB) and
is still more than any bundled model's eval resize asks for. A zip is read from memory with the same checks as an
uploaded dataset's (data/zip_checks: paths, links, sizes, compression ratios, encrypted entries), never extracted.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from PIL import Image

from ptm_core.base.errors import PTMError
from ptm_core.base.limits import FILE_BYTES_ENV, max_file_bytes, mb
from ptm_core.base.messages import M_
from ptm_core.data.files import over_size_limit
from ptm_core.data.imaging import ImageRejected, first_line, open_rgb
from ptm_core.data.zip_checks import check_members, entry_name, entry_problem, member_parts, zip_budget

ARRIVAL_SIDE = 512  # longest side kept; the bundled models resize the shorter side to at most 292 px
MAX_ZIP_PHOTOS = 250  # read from one zip at most: 5 classes of 50, what a session keeps
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def photo_from_bytes(data: bytes, name: str) -> Image.Image:
    """One photo's bytes as an RGB image no larger than ARRIVAL_SIDE, or a one-line PTMError naming it."""
    limit = max_file_bytes()
    if len(data) > limit:
        raise PTMError(M_("{name} is too large ({size} MB, over the {limit} MB limit set by {env}).", name=name,
                          size=mb(len(data)), limit=mb(limit), env=FILE_BYTES_ENV))
    try:
        image = open_rgb(data, draft_side=ARRIVAL_SIDE)
    except ImageRejected as exc:
        raise PTMError(M_("{name} is not a usable image: {reason}.", name=name, reason=exc.message)) from None
    if max(image.size) > ARRIVAL_SIDE:
        image.thumbnail((ARRIVAL_SIDE, ARRIVAL_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return image


@dataclass
class ZipPhotos:
    """A zip's photos: by folder when they sit in two or more folders (one class each), else all under None (the
    class the zip was added to); and the entries left out, each with its reason."""

    by_folder: dict[str | None, list[Image.Image]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # Messages: the page words them in its language

    @property
    def count(self) -> int:
        return sum(len(images) for images in self.by_folder.values())


def _hidden(parts: tuple[str, ...]) -> bool:
    """macOS's resource forks and dot-files: not photos, and not worth a line in the skip list."""
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def photos_from_zip(data: bytes, name: str, max_photos: int = MAX_ZIP_PHOTOS) -> ZipPhotos:
    """The images in a zip held in memory, the first `max_photos` of them (what one session may hold bounds what
    is decoded); a hostile archive is refused whole, an unusable entry skipped with its reason."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise PTMError(M_("{name} is not a readable zip ({reason}).", name=name, reason=first_line(exc))) from None
    found, out = [], ZipPhotos()
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        check_members(infos, name, len(data))
        budget = zip_budget(len(data))
        for info in infos:
            parts = member_parts(info, name)
            problem = entry_problem(info)
            if _hidden(parts):
                continue
            if problem is None and PurePosixPath(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES:
                problem = M_("not an image file")
            if problem is None and info.file_size > max_file_bytes():  # zipfile reads no more than it declares
                problem = over_size_limit(max_file_bytes())
            if problem is not None:
                out.skipped.append(M_("{entry}: {problem}", entry=entry_name(info), problem=problem))
                continue
            if len(found) >= max_photos:
                out.skipped.append(M_("{entry}: over the {n} photos read from one zip", entry=entry_name(info),
                                      n=max_photos))
                continue
            budget.add_file(name)
            try:
                raw = archive.read(info)
            except (zipfile.BadZipFile, OSError, ValueError, RuntimeError) as exc:  # CRC, truncated, unsupported
                out.skipped.append(M_("{entry}: {problem}", entry=entry_name(info), problem=first_line(exc)))
                continue
            budget.add_bytes(len(raw), name)
            try:
                found.append((parts[-2] if len(parts) > 1 else None, photo_from_bytes(raw, parts[-1])))
            except PTMError as exc:
                out.skipped.append(exc.message)
    folders = {folder for folder, _image in found}
    for folder, image in found:
        out.by_folder.setdefault(folder if len(folders) > 1 else None, []).append(image)
    return out

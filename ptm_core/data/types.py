"""A dataset as RGB PIL images + integer labels, with a stable content fingerprint."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ptm_core.base.configs import stable_hash
from ptm_core.data.files import FileRejected, FileStamp, Roots, read_user_file
from ptm_core.data.imaging import open_rgb, resize_problem, to_rgb
from ptm_core.base.errors import PTMError

Item = np.ndarray | Path | Image.Image


class LazyItems(Sequence):
    """Items fetched on demand from an indexable source (a torchvision dataset holds 50k+ images).

    `take` composes index arrays instead of materialising items, so a subset of a lazy
    dataset stays lazy and decodes only the images that are actually shown or embedded.
    """

    def __init__(self, source: Sequence, indices: np.ndarray | None = None) -> None:
        self.source = source
        self.indices = np.arange(len(source)) if indices is None else np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Item:  # type: ignore[override]
        return self.source[int(self.indices[i])]

    def take(self, indices: np.ndarray) -> "LazyItems":
        return LazyItems(self.source, self.indices[np.asarray(indices, dtype=np.int64)])


class ItemUnreadable(PTMError):
    """An item that was fine when listed but cannot be decoded now (truncated, swapped, removed)."""

    def __init__(self, item_id: str, reason: str) -> None:
        super().__init__(f"Could not read image {item_id}: {reason}.")
        self.item_id, self.reason = item_id, reason

    def __reduce__(self):  # picklable despite its two-argument constructor
        return type(self), (self.item_id, self.reason)


@dataclass
class Dataset:
    """Images are decoded arrays (uint8 HxWxC or HxW), PIL images, or file paths decoded on demand.

    `skipped` lists (relative path, reason) for files that were found but could not be used.
    """

    name: str
    items: Sequence[Item]
    labels: np.ndarray
    class_names: list[str]
    fingerprint: str
    ids: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    stamps: dict[Path, FileStamp] = field(default_factory=dict)  # file items as they were when checked
    allowed: Roots | None = None  # where file items must still resolve to when read
    unreadable: dict[int, str] = field(default_factory=dict)  # index -> reason, for items that failed at decode

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if not self.ids:
            self.ids = [f"{self.name}/{i}" for i in range(len(self.labels))]

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, i: int, shorter_side: int | None = None) -> Image.Image:
        """Image `i` as RGB; ItemUnreadable if it cannot be decoded, or, with `shorter_side` (what a resize
        will scale the shorter side to), if that resize would exceed the pixel limit."""
        image = self._decoded(i)
        problem = None if shorter_side is None else resize_problem(image.width, image.height, shorter_side)
        if problem is not None:
            raise ItemUnreadable(self.ids[i], problem)
        return image

    def _decoded(self, i: int) -> Image.Image:
        item = self.items[i]
        if isinstance(item, Path):
            try:
                # Read by the checked route, not by path: the file must be the one that was listed.
                return open_rgb(read_user_file(item, self.allowed, self.stamps.get(item))[0])
            except FileRejected as exc:
                raise ItemUnreadable(self.ids[i], str(exc)) from None
        if isinstance(item, Image.Image):
            return to_rgb(item)
        return Image.fromarray(item).convert("RGB")

    def subset(self, indices: np.ndarray) -> "Dataset":
        indices = np.asarray(indices, dtype=np.int64)
        items = self.items.take(indices) if isinstance(self.items, LazyItems) else [self.items[i] for i in indices]
        return Dataset(
            name=self.name,
            items=items,
            labels=self.labels[indices],
            class_names=self.class_names,
            fingerprint=stable_hash([self.fingerprint, indices.tolist()]),
            ids=[self.ids[i] for i in indices],
            skipped=list(self.skipped),
            stamps=self.stamps,
            allowed=self.allowed,
        )

    def without_unreadable(self) -> tuple["Dataset", np.ndarray]:
        """The items that decoded (with the others added to `skipped`) and their indices in this dataset."""
        keep = np.array([i for i in range(len(self)) if i not in self.unreadable], dtype=np.int64)
        kept = self.subset(keep)
        kept.fingerprint = self.fingerprint  # the cache entry was keyed on the dataset as loaded
        kept.skipped += [(self.ids[i], reason) for i, reason in sorted(self.unreadable.items())]
        return kept, keep

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return dict(zip(self.class_names, counts.tolist()))

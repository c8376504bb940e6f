"""Fashion-MNIST as `fashion-mnist[:SPLIT]`: 70,000 28x28 grey images of 10 kinds of clothing (Zalando, MIT).

Read from Debian's `dataset-fashion-mnist` (idx files, gzipped, under /usr/share/datasets/fashion-mnist, or
wherever $PTM_FASHION_MNIST_DIR says) where it is installed; otherwise from torchvision's FashionMNIST (its copy
under $PTM_DATA_DIR/torchvision, or its download when online). Both hold the same arrays, so a run gets the same
fingerprint, and the same cache entries, whichever it read.

Format (Yann LeCun's idx, as the Fashion-MNIST repo documents it): a big-endian header of two zero bytes, a type
byte (0x08: unsigned byte) and the number of dimensions, then one 4-byte size per dimension, then the data.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import os
import zlib
from pathlib import Path

import numpy as np

from ptm_core.base.configs import stable_hash
from ptm_core.base.errors import PTMError
from ptm_core.data.imaging import first_line
from ptm_core.data.tv import SOURCES, open_torchvision, tv_root
from ptm_core.data.types import Dataset

DIR_ENV = "PTM_FASHION_MNIST_DIR"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
SIDE = 28
# split -> (file prefix, number of images); the sizes are the published ones, so a short file is caught.
SPLITS = {"train": ("train", 60_000), "test": ("t10k", 10_000)}
SPEC_SPLITS = ("all", "train", "test")  # all: train then test
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801  # unsigned bytes, 3 dimensions / 1 dimension
INSTALL_HINT = ("Fashion-MNIST is not installed: `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or, "
                "online, torchvision's FashionMNIST download")
TV_NAME = "fashionmnist"


def fashion_dir() -> Path:
    return Path(os.environ.get(DIR_ENV) or DEBIAN_DIR).expanduser()


def idx_paths(directory: Path, split: str) -> tuple[Path, Path]:
    prefix = SPLITS[split][0]
    return directory / f"{prefix}-images-idx3-ubyte.gz", directory / f"{prefix}-labels-idx1-ubyte.gz"


def installed(directory: Path | None = None) -> bool:
    directory = fashion_dir() if directory is None else directory
    return all(path.is_file() for split in SPLITS for path in idx_paths(directory, split))


def torchvision_copy() -> bool:
    """Whether torchvision's own copy is here (it keeps the files unzipped under FashionMNIST/raw)."""
    raw = tv_root() / "FashionMNIST" / "raw"
    return all((raw / path.name.removesuffix(".gz")).is_file() for split in SPLITS for path in idx_paths(raw, split))


def missing() -> str | None:
    """None where the dataset can be read without a download; otherwise the one line that says how to get it."""
    return None if installed() or torchvision_copy() else INSTALL_HINT


def corrupt(path: Path, reason: str) -> PTMError:
    return PTMError(f"Fashion-MNIST file {path} is damaged ({reason}); reinstall it: "
                    f"`apt-get install --reinstall dataset-fashion-mnist`.")


def read_idx(path: Path, magic: int, shape: tuple[int, ...]) -> np.ndarray:
    """The uint8 array of one gzipped idx file, refused (one line) unless its header and length are `shape`'s."""
    header_bytes = 4 + 4 * len(shape)
    expected = header_bytes + int(np.prod(shape))
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read(expected + 1)  # one byte more than the whole: trailing data shows, nothing unbounded
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; a cut-off stream an EOFError
        raise corrupt(path, first_line(exc)) from None
    if len(raw) < header_bytes:
        raise corrupt(path, f"{len(raw)} bytes, shorter than its header")
    found_magic = int.from_bytes(raw[:4], "big")
    if found_magic != magic:
        raise corrupt(path, f"magic number 0x{found_magic:08x}, expected 0x{magic:08x}")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(len(shape)))
    if dims != shape:
        raise corrupt(path, f"sizes {dims}, expected {shape}")
    if len(raw) != expected:
        what = "trailing bytes" if len(raw) > expected else f"{expected - len(raw):,} bytes missing"
        raise corrupt(path, what)
    return np.frombuffer(raw, dtype=np.uint8, offset=header_bytes).reshape(shape)


def read_split(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    count = SPLITS[split][1]
    images_path, labels_path = idx_paths(directory, split)
    images = read_idx(images_path, IMAGES_MAGIC, (count, SIDE, SIDE))
    labels = read_idx(labels_path, LABELS_MAGIC, (count,))
    if labels.max(initial=0) >= len(CLASS_NAMES):
        raise corrupt(labels_path, f"label {int(labels.max())}, expected 0-{len(CLASS_NAMES) - 1}")
    return images, labels.astype(np.int64)


@functools.lru_cache(maxsize=2)
def _cached_split(directory: str, split: str, stamp: tuple) -> tuple[np.ndarray, np.ndarray]:
    del stamp  # part of the key only: a file replaced since (a reinstall) is read again
    return read_split(Path(directory), split)


def _stamp(directory: Path, split: str) -> tuple:
    return tuple((s.st_mtime_ns, s.st_size) for s in (p.stat() for p in idx_paths(directory, split)))


def from_torchvision(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The same arrays from torchvision's FashionMNIST: its local copy, else its download (probed first)."""
    try:
        dataset = open_torchvision(SOURCES[TV_NAME], split, fallback="")
    except PTMError as exc:
        raise PTMError(f"{INSTALL_HINT}. Not in {fashion_dir()}; torchvision: {str(exc).strip()}") from None
    return np.asarray(dataset.data, dtype=np.uint8), np.asarray(dataset.targets, dtype=np.int64)


def split_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    directory = fashion_dir()
    if installed(directory):
        return _cached_split(str(directory), split, _stamp(directory, split))
    return from_torchvision(split)


def parse_split(arg: str | None) -> str:
    split = (arg or "all").strip().lower() or "all"
    if split not in SPEC_SPLITS:
        raise PTMError(f"fashion-mnist has splits {', '.join(SPEC_SPLITS)} (fashion-mnist:test); got '{arg}'.")
    return split


def load_fashion_mnist(arg: str | None) -> Dataset:
    split = parse_split(arg)
    splits = list(SPLITS) if split == "all" else [split]
    parts = [split_arrays(s) for s in splits]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    ids = [f"{s}/{i:05d}" for s, (_, part_labels) in zip(splits, parts) for i in range(len(part_labels))]
    digest = hashlib.sha256(images.tobytes())
    digest.update(labels.tobytes())
    name = "fashion-mnist" if split == "all" else f"fashion-mnist:{split}"
    return Dataset(name, list(images), labels, list(CLASS_NAMES), stable_hash([name, digest.hexdigest()]), ids)

"""torchvision datasets as `tv:NAME[:SPLIT]`, read from `data_dir()/torchvision`, downloaded if absent.

Offline is the normal case here, so the local copy is tried first and a download is only
attempted after a short connectivity probe: torchvision's own downloader has no timeout
and would otherwise leave the UI spinning for minutes before failing.
"""
from __future__ import annotations

import hashlib
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ptm_core.base.configs import stable_hash
from ptm_core.data.types import Dataset, LazyItems
from ptm_core.base.errors import PTMError
from ptm_core.data.imaging import first_line
from ptm_core.base.paths import data_dir

PROBE_TIMEOUT_S = 3.0
_FALLBACK = "Put the files there or use mnist5k/digits/shapes/folder:PATH."


@dataclass(frozen=True)
class Source:
    """How one torchvision class is built: its split argument and where it downloads from."""

    cls_name: str
    host: str
    splits: tuple[str, ...]  # the first is the default
    split_arg: str = "split"  # "train" means a bool train=True/False argument

    def kwargs(self, split: str) -> dict:
        return {"train": split == "train"} if self.split_arg == "train" else {"split": split}


SOURCES: dict[str, Source] = {
    "cifar10": Source("CIFAR10", "www.cs.toronto.edu", ("train", "test"), "train"),
    "cifar100": Source("CIFAR100", "www.cs.toronto.edu", ("train", "test"), "train"),
    "mnist": Source("MNIST", "ossci-datasets.s3.amazonaws.com", ("train", "test"), "train"),
    "fashionmnist": Source("FashionMNIST", "fashion-mnist.s3-website.eu-central-1.amazonaws.com",
                           ("train", "test"), "train"),
    "stl10": Source("STL10", "ai.stanford.edu", ("train", "test")),
    "svhn": Source("SVHN", "ufldl.stanford.edu", ("train", "test", "extra")),
    "flowers102": Source("Flowers102", "www.robots.ox.ac.uk", ("train", "val", "test")),
    "oxfordiiitpet": Source("OxfordIIITPet", "www.robots.ox.ac.uk", ("trainval", "test")),
}
_SPLIT_ALIASES = {("oxfordiiitpet", "train"): "trainval"}


class _Images:
    """The image half of a torchvision dataset's (image, target) pairs, indexable lazily."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        return self.dataset[i][0]


def parse_tv_arg(arg: str | None) -> tuple[str, Source, str]:
    name, _, split = (arg or "").strip().lower().partition(":")
    if name not in SOURCES:
        raise PTMError(f"tv needs a dataset name: tv:NAME[:SPLIT] with NAME in {', '.join(SOURCES)}.")
    source = SOURCES[name]
    split = _SPLIT_ALIASES.get((name, split), split) or source.splits[0]
    if split not in source.splits:
        raise PTMError(f"tv:{name} has splits {', '.join(source.splits)}; got '{split}'.")
    return name, source, split


def tv_root() -> Path:
    return data_dir() / "torchvision"


def reachable(host: str, port: int = 443, timeout: float | None = None) -> bool:
    """Whether a TCP connection to host opens within `timeout` seconds, DNS lookup included.

    create_connection's timeout does not bound name resolution, which can stall far longer
    offline, so the attempt runs in a daemon thread that is simply abandoned on timeout.
    """
    timeout = PROBE_TIMEOUT_S if timeout is None else timeout
    result: list[bool] = []

    def attempt() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=attempt, name=f"probe-{host}", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def open_torchvision(source: Source, split: str, fallback: str = _FALLBACK):
    """The torchvision dataset object: local copy first, then a (probed) download.

    `fallback` ends the error line: what to do instead (callers with their own advice pass theirs, or "")."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, source.cls_name)
    root = tv_root()
    root.mkdir(parents=True, exist_ok=True)
    try:
        return cls(root=str(root), download=False, **source.kwargs(split))
    except Exception:  # missing or damaged files: torchvision raises RuntimeError, pickle/IO errors...
        pass
    missing = f"{source.cls_name} is not in {root} and could not be downloaded"
    if not reachable(source.host):
        raise PTMError(f"{missing} (offline? no connection to {source.host}). {fallback}".strip())
    try:
        return cls(root=str(root), download=True, **source.kwargs(split))
    except Exception as exc:  # URLError, HTTPError, checksum RuntimeError, disk full...
        raise PTMError(f"{missing} ({first_line(exc)}). {fallback}".strip()) from None


def _labels_of(dataset) -> np.ndarray:
    """Targets without decoding images: torchvision keeps them under one of these names."""
    for attr in ("targets", "labels", "_labels"):
        values = getattr(dataset, attr, None)
        if values is not None:
            return np.asarray(values, dtype=np.int64).reshape(-1)
    raise PTMError(f"{type(dataset).__name__} exposes no labels (targets/labels/_labels).")


def _class_names(dataset, labels: np.ndarray) -> list[str]:
    classes = getattr(dataset, "classes", None)
    if classes:
        return [str(c) for c in classes]
    return [str(i) for i in range(int(labels.max()) + 1 if labels.size else 0)]  # SVHN: digits 0-9


def load_torchvision(arg: str | None) -> Dataset:
    name, source, split = parse_tv_arg(arg)
    dataset = open_torchvision(source, split)
    labels = _labels_of(dataset)
    if len(labels) != len(dataset):
        raise PTMError(f"tv:{name}:{split} has {len(dataset)} images but {len(labels)} labels.")
    label_digest = hashlib.sha256(np.ascontiguousarray(labels).tobytes()).hexdigest()
    fingerprint = stable_hash(["tv", name, split, len(labels), label_digest])
    spec = f"tv:{name}:{split}"
    return Dataset(spec, LazyItems(_Images(dataset)), labels, _class_names(dataset, labels), fingerprint)

"""One frozen dataclass per pipeline step; `key()` is a stable hash used as its cache key."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass


def stable_hash(payload: object, length: int = 16) -> str:
    """Hash of a JSON-serialisable payload that is identical across processes and machines."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


class _Keyed:
    def key(self) -> str:
        return stable_hash({"type": type(self).__name__, **dataclasses.asdict(self)})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DatasetConfig(_Keyed):
    spec: str = "mnist5k"
    limit: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class BackboneConfig(_Keyed):
    name: str = "tf_efficientnet_lite0"
    weights: str = "bundled"  # bundled | hub | random | a local file path
    seed: int = 0  # init seed for `random` weights


@dataclass(frozen=True)
class ExtractionConfig(_Keyed):
    image_size: int | None = None  # None: the model's own default input size
    batch_size: int = 32  # small enough that Cancel acts within about a second at 224 px on a CPU
    device: str = "auto"
    layer: str = "pre_logits"


@dataclass(frozen=True)
class ProbeConfig(_Keyed):
    seed: int = 0
    test_size: float = 0.2
    val_size: float = 0.2
    Cs: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
    max_iter: int = 1000


@dataclass(frozen=True)
class ProjectionConfig(_Keyed):
    method: str = "umap"
    n_neighbors: int = 15
    min_dist: float = 0.1
    metric: str = "euclidean"
    seed: int = 0

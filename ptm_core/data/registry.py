"""The dataset registry: a spec names a registered source and an optional argument.

`mnist5k`, `digits`, `fashion-mnist:test`, `shapes:n=600,classes=4,size=64`, `folder:/path/to/root`,
`zip:/path/to/data.zip`, `tv:cifar10:test`. The built-in sources register themselves
in `ptm_core.data.sources`, which `ptm_core.data` imports.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ptm_core.base.messages import M_
from ptm_core.base.configs import DatasetConfig
from ptm_core.data.types import Dataset
from ptm_core.base import checks
from ptm_core.base.errors import PTMError


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    factory: Callable[[str | None], Dataset]
    description: str
    takes_argument: bool
    missing: Callable[[], str | None] | None = None  # optional data: says how to get it where it is not here

    def unavailable(self) -> str | None:
        """None where the dataset can be loaded here; else one line saying how to get it (cheap: no loading)."""
        return None if self.missing is None else self.missing()


_REGISTRY: dict[str, DatasetEntry] = {}


def register_dataset(name: str, description: str, takes_argument: bool = False,
                     missing: Callable[[], str | None] | None = None):
    def decorator(factory: Callable[[str | None], Dataset]):
        _REGISTRY[name] = DatasetEntry(name, factory, description, takes_argument, missing)
        return factory

    return decorator


def list_datasets() -> list[DatasetEntry]:
    return list(_REGISTRY.values())


def parse_spec(spec: str) -> tuple[DatasetEntry, str | None]:
    name, _, arg = spec.partition(":")
    entry = _REGISTRY.get(name.strip())
    if entry is None:
        known = ", ".join(sorted(_REGISTRY))
        raise PTMError(M_("Unknown dataset '{spec}'. Known: {known} (e.g. folder:PATH, zip:PATH, tv:cifar10).",
                          spec=spec, known=known))
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
        raise PTMError(M_("--limit {limit} is smaller than the number of classes ({n}).", limit=limit, n=len(classes)))
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
    checks.seed("dataset subset seed", config.seed)
    entry, arg = parse_spec(config.spec)
    dataset = entry.factory(arg)
    if config.limit is not None:
        if config.limit < 1:
            raise PTMError("--limit must be a positive number of images.")
        dataset = dataset.subset(stratified_subset(dataset.labels, config.limit, config.seed))
    return dataset

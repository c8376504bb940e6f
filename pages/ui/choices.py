"""What a user has picked: one small frozen dataclass per concern, and how each is written in a URL.

Plain Python, no streamlit: `pages/ui/settings.py` binds these to widgets, session state and the URL.
Field names are the URL's parameter names, so they are unique across concerns. A field's metadata
holds its rule (a range or a fixed set of choices); choices that depend on the installation (the
dataset kinds, the timm models) are passed in by the caller.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Collection, Mapping, TypeVar

from ptm_core.base import (FINETUNE_MODES, BackboneConfig, DatasetConfig, ExtractionConfig, FinetuneConfig, KNNConfig,
                           ProjectionConfig, Source)
from ptm_core.flows import COMPARE_BACKBONE, DEFAULT_BACKBONE, MAP_METHODS, MAP_METRICS, BenchConfig

IMAGE_SIZES = (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 384)
FINETUNE_SIZES = (32, 64, 96, 128, 160, 224)
WEIGHTS = ("bundled", "hub", "random", "file")
T = TypeVar("T")


def _between(default: Any, lo: float, hi: float) -> Any:
    return field(default=default, metadata={"range": (lo, hi)})


def _one_of(default: Any, choices: Collection) -> Any:
    return field(default=default, metadata={"choices": tuple(choices)})


@dataclass(frozen=True)
class DataChoice:
    dataset: str = "mnist5k"
    folder_path: str = ""
    zip_path: str = ""
    tv_name: str = "cifar10"
    tv_split: str = "train"
    shapes_n: int = _between(600, 20, 20_000)
    shapes_classes: int = _between(6, 2, 8)
    shapes_size: int = _between(64, 16, 256)
    shapes_clutter: int = _between(0, 0, 4)
    limit: int = _between(0, 0, 1_000_000)
    seed: int = _between(0, 0, 2**31 - 1)

    def spec(self) -> str:
        arg = {"folder": self.folder_path.strip(), "zip": self.zip_path.strip(),
               "tv": f"{self.tv_name}:{self.tv_split}",
               "shapes": self._shapes_arg()}.get(self.dataset, "")
        return f"{self.dataset}:{arg}" if arg else self.dataset

    def _shapes_arg(self) -> str:
        # Options at their defaults stay out, so older links and caches keep their specs.
        return (f"n={self.shapes_n},classes={self.shapes_classes}" + (f",size={self.shapes_size}" if self.shapes_size != 64
                else "") + (f",clutter={self.shapes_clutter}" if self.shapes_clutter else ""))

    def config(self) -> DatasetConfig:
        return DatasetConfig(self.spec(), self.limit or None, self.seed)

    def unused(self) -> set[str]:
        """The other kinds' arguments: kept while the session lasts (switching back finds them), out of the URL, where a
        stale zip_path beside dataset=mnist5k would only mislead."""
        own = {"folder": {"folder_path"}, "zip": {"zip_path"}, "tv": {"tv_name", "tv_split"},
               "shapes": {"shapes_n", "shapes_classes", "shapes_size", "shapes_clutter"}}
        return set().union(*own.values()) - own.get(self.dataset, set())


@dataclass(frozen=True)
class BackboneChoice:
    model_filter: str = ""
    backbone: str = DEFAULT_BACKBONE
    weights: str = _one_of("bundled", WEIGHTS)
    weights_path: str = ""

    def config(self, seed: int) -> BackboneConfig:
        weights = self.weights_path.strip() if self.weights == "file" else self.weights
        return BackboneConfig(self.backbone, weights or "file", seed)


@dataclass(frozen=True)
class ExtractionChoice:
    image_size: int = _one_of(128, IMAGE_SIZES)

    def config(self) -> ExtractionConfig:
        return ExtractionConfig(image_size=self.image_size)


def default_source() -> Source:
    """The source every setting at its default describes: the app's first run (warmed up at start-up)."""
    data = DataChoice()
    return Source(data.config(), BackboneChoice().config(data.seed), ExtractionChoice().config())


@dataclass(frozen=True)
class MapChoice:
    map: str = _one_of("umap", MAP_METHODS)
    map_dims: int = _one_of(2, (2, 3))
    n_neighbors: int = _between(15, 2, 100)
    min_dist: float = _between(0.1, 0.0, 0.99)
    metric: str = _one_of("euclidean", MAP_METRICS)
    reproducible: bool = True
    perplexity: float = _between(30.0, 5.0, 50.0)

    def config(self, seed: int) -> ProjectionConfig:
        return ProjectionConfig(method=self.map, n_components=self.map_dims, seed=seed, n_neighbors=self.n_neighbors,
                                min_dist=self.min_dist, metric=self.metric, reproducible=self.reproducible,
                                perplexity=self.perplexity)


@dataclass(frozen=True)
class CompareChoice:
    backbone_b: str = COMPARE_BACKBONE  # another real backbone than A's default, offline too
    weights_b: str = _one_of("bundled", WEIGHTS[:3])
    image_size_b: int = _one_of(128, IMAGE_SIZES)
    compare_k: int = _between(10, 5, 50)

    def source(self, a: Source) -> Source:
        return Source(a.dataset, BackboneConfig(self.backbone_b, self.weights_b, a.backbone.seed),
                      ExtractionConfig(image_size=self.image_size_b))


@dataclass(frozen=True)
class FinetuneChoice:
    ft_mode: str = _one_of("lp-ft", FINETUNE_MODES)
    ft_epochs: int = _between(1, 1, 100)
    ft_size: int = _one_of(96, FINETUNE_SIZES)
    ft_batch: int = _between(32, 4, 512)
    ft_lr_head: float = _between(1e-3, 1e-6, 1.0)
    ft_lr_backbone: float = _between(1e-4, 1e-7, 1.0)
    ft_wd: float = _between(0.05, 0.0, 1.0)
    ft_seed: int = _between(0, 0, 2**31 - 1)
    ft_augment: bool = False  # flips can hurt on digits
    ft_last_n: int = _between(2, 1, 12)

    def config(self) -> FinetuneConfig:
        return FinetuneConfig(mode=self.ft_mode, epochs=self.ft_epochs, lr_head=self.ft_lr_head,
                              lr_backbone=self.ft_lr_backbone, batch_size=self.ft_batch, image_size=self.ft_size,
                              weight_decay=self.ft_wd, augment=self.ft_augment, last_n=self.ft_last_n,
                              seed=self.ft_seed)


@dataclass(frozen=True)
class KNNChoice:
    knn_k: int = _between(20, 1, 100)
    knn_t: float = _between(0.07, 0.01, 1.0)

    def config(self) -> KNNConfig:
        return KNNConfig(k=self.knn_k, temperature=self.knn_t)


BENCH_WEIGHTS = ("bundled", "hub")


@dataclass(frozen=True)
class BenchChoice:
    """The leaderboard's rows: backbones (comma-separated in the URL), their weights, random init beside each, and
    how many seeded splits each is scored on."""
    bench_backbones: str = DEFAULT_BACKBONE
    bench_weights: str = _one_of("bundled", BENCH_WEIGHTS)
    bench_random: bool = True
    bench_seeds: int = _between(3, 1, 10)

    def names(self) -> list[str]:
        return list(dict.fromkeys(n.strip() for n in self.bench_backbones.split(",") if n.strip()))

    def config(self, source: Source, knn: KNNConfig = KNNConfig()) -> BenchConfig | None:
        """The leaderboard of these backbones on the source's data and image size (random weights seeded by the
        data seed, as everywhere); None with no backbone picked."""
        if not self.names():
            return None
        return BenchConfig(tuple(self.names()), self.bench_weights, self.bench_random, source.dataset,
                           source.extraction.image_size or ExtractionChoice().image_size, self.bench_seeds, knn,
                           init_seed=source.dataset.seed)


LANGUAGES = {"en": "English", "zh": "简体中文"}


@dataclass(frozen=True)
class ViewChoice:
    """How the app reads, not what it computes: the interface language, projector-sized text, and the tour's class
    mode (its questions posed alone on screen, pages/ui/question_views.py)."""
    lang: str = _one_of("en", LANGUAGES)
    presenter: bool = False
    classroom: bool = False


CONCERNS = (DataChoice, BackboneChoice, ExtractionChoice, MapChoice, CompareChoice, FinetuneChoice, KNNChoice,
            BenchChoice, ViewChoice)
PARAMETERS = tuple(f.name for concern in CONCERNS for f in dataclasses.fields(concern))


def _field(concern: type, name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(concern) if f.name == name)


def convert(concern: type, name: str, value: Any) -> Any:
    """A widget's or a URL's value as the field's own type (bool("False") is True, so booleans by name)."""
    kind = type(_field(concern, name).default)
    if kind is bool and isinstance(value, str):
        if value.strip().lower() not in ("true", "false", "1", "0"):
            raise ValueError(value)
        return value.strip().lower() in ("true", "1")
    if kind is int and isinstance(value, str):
        return int(value.strip())
    if kind is int and isinstance(value, float):
        if not value.is_integer():
            raise ValueError(value)
    return kind(value)


def problem(concern: type, name: str, value: Any, options: Collection | None = None) -> str | None:
    """Why `value` cannot be this field's setting, in one line; None when it can."""
    rule = _field(concern, name).metadata
    choices = options if options is not None else rule.get("choices")
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} must be a finite number"
    if "range" in rule and not rule["range"][0] <= value <= rule["range"][1]:
        lo, hi = rule["range"]
        return f"{name}={value} is outside {lo}-{hi}"
    if choices is not None and value not in choices:
        return f"{name}={value} is not one of the choices"
    return None


def from_params(concern: type[T], params: Mapping[str, str],
                options: Mapping[str, Collection] | None = None) -> tuple[T, list[str]]:
    """The concern's settings from URL parameters; a bad value keeps its default and is named in the list."""
    values, problems = {}, []
    for f in dataclasses.fields(concern):
        if f.name not in params:
            continue
        try:
            value = convert(concern, f.name, params[f.name])
        except (TypeError, ValueError, OverflowError):
            kind = {bool: "true or false", int: "a whole number", float: "a number"}.get(type(f.default), "text")
            problems.append(f"{f.name}={params[f.name]!r} is not {kind}")
            continue
        why = problem(concern, f.name, value, (options or {}).get(f.name))
        if why:
            problems.append(why)
        else:
            values[f.name] = value
    return concern(**values), problems


def to_params(choice: Any) -> dict[str, str]:
    """The settings that differ from their defaults, as URL parameters (a short, shareable link)."""
    defaults, unused = type(choice)(), choice.unused() if hasattr(choice, "unused") else set()
    return {f.name: str(getattr(choice, f.name)) for f in dataclasses.fields(choice)
            if getattr(choice, f.name) != getattr(defaults, f.name) and f.name not in unused}

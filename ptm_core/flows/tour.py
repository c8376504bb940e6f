"""The guided tour's steps as jobs, each a live computation on the offline data (cached like the rest).

1. what a backbone does: images in, vectors out, and each image's nearest neighbours among them;
2. and 3. raw pixels vs a random-init backbone vs the pretrained one, on cluttered shapes and on MNIST;
4. label efficiency: 1-25 labels per class, pretrained features vs pixels, on both;
5. frozen vs adapted: the linear probe vs LP-FT on digits.
Every number keeps the source that produced it; the page never shows a number it did not compute.
`step_spec(plan, step)` is each step's job, the same whether its own button or "run every step" starts it.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import numpy as np

from ptm_core.evals.baselines import PIXEL_SIZE, pixel_features, pixel_key, random_weights
from ptm_core.base.configs import (BackboneConfig, DatasetConfig, ExtractionConfig, FinetuneConfig, ProbeConfig,
                              ProjectionConfig, Source, Keyed, stable_hash)
from ptm_core.data import load_dataset
from ptm_core.features.extraction import extract
from ptm_core.runs.jobs import JobContext, JobSpec
from ptm_core.evals.label_efficiency import run_label_efficiency
from ptm_core.flows.lab import run_finetune
from ptm_core.maps.neighbours import nearest_neighbours
from ptm_core.probes.linear import cached_linear_probe
from ptm_core.maps.projection import compute_projection
from ptm_core.maps.estimate import estimate_seconds

KINDS = ("pixels", "random", "pretrained")  # the three feature kinds steps 2-4 contrast
VECTOR_SHOWN = 64


@dataclass(frozen=True)
class TourPlan(Keyed):
    """What every step computes on. Cluttered shapes: textured backgrounds, distractors, any colour, 8 classes.

    Tuned so the pretrained probe is high but not perfect (81.5 % measured) while random init and pixels
    sit near chance (16.5 % and 14 %; chance is 12.5 %): features that ignore texture, colour and position
    are what ImageNet gives. 1,000 images keep step 2 near 25 s on two cores from a cold server.
    """
    shapes: DatasetConfig = DatasetConfig("shapes:n=1000,classes=8,size=96,clutter=1")
    digits: DatasetConfig = DatasetConfig("mnist5k", limit=2000)
    backbone: BackboneConfig = BackboneConfig()
    image_size: int = 96
    # UMAP's default path: the server compiles it at start-up (about 8 s since the exact-kNN path), so by the
    # first click a 1,000-point map takes a second or two; t-SNE would start a worker process per map.
    projection: ProjectionConfig = ProjectionConfig(method="umap")
    queries: int = 4  # step 1: images whose neighbours are shown
    neighbours: int = 5
    ks: tuple[int, ...] = (1, 2, 5, 10, 25)
    seeds: tuple[int, ...] = (0, 1, 2)
    # 6 short epochs (20 steps each): 1 and 3 left LP-FT below the probe it starts from (71.5 and 82.0 vs 83.0 %),
    # 6 gave 85.0 % in 38 s on two cores; adapting needs some training before it pays.
    finetune: FinetuneConfig = FinetuneConfig(mode="lp-ft", epochs=6, image_size=64, augment=False,
                                              val_every_steps=10)
    finetune_limit: int = 1000

    def source(self, dataset: DatasetConfig, kind: str = "pretrained") -> Source:
        backbone = random_weights(self.backbone) if kind == "random" else self.backbone
        return Source(dataset, backbone, ExtractionConfig(image_size=self.image_size))

    def finetune_source(self) -> Source:
        return self.source(dataclasses.replace(self.digits, limit=self.finetune_limit))

    def step_key(self, step: str, *parts) -> str:
        return stable_hash(["tour", step, self.key(), list(parts)])


def describe_kind(plan: TourPlan, dataset: DatasetConfig, kind: str) -> str:
    """What produced a step's number, in the words the rest of the app uses."""
    if kind == "pixels":
        return f"{PIXEL_SIZE}×{PIXEL_SIZE} grey pixels of {dataset.spec}" + (
            f" (limit {dataset.limit})" if dataset.limit else "")
    return plan.source(dataset, kind).describe()


@dataclass
class NeighbourResult:
    produced_by: str
    feature_dim: int
    queries: list[int]  # row indices into the dataset
    neighbours: list[list[int]]
    similarities: list[list[float]]
    labels: np.ndarray
    class_names: list[str]
    ids: list[str]
    vectors: list[list[float]]  # the first VECTOR_SHOWN numbers of each query's feature vector


def run_neighbours(plan: TourPlan, ctx: JobContext) -> NeighbourResult:
    """Step 1: pretrained features of the shapes, and a few images' nearest neighbours (cosine)."""
    source = plan.source(plan.shapes)
    ctx.stage("extracting features")
    fs = extract(source.dataset, source.backbone, source.extraction, ctx.scaled(0, 0.95), ctx.cancelled,
                 pace_pending=ctx.pace_pending)
    rng = np.random.default_rng(0)
    # One query per class, so the neighbours show shapes matched across colour and background.
    queries = [int(rng.choice(np.flatnonzero(fs.labels == c))) for c in range(min(plan.queries, len(fs.class_names)))]
    found = [nearest_neighbours(fs.features, q, plan.neighbours) for q in queries]
    return NeighbourResult(source.describe(), int(fs.features.shape[1]), queries,
                           [idx.tolist() for idx, _ in found], [sim.tolist() for _, sim in found],
                           fs.labels, fs.class_names, fs.ids, [fs.features[q, :VECTOR_SHOWN].tolist() for q in queries])


@dataclass
class ContrastRow:
    kind: str
    produced_by: str
    accuracy: float
    n_test: int
    seconds: float | None
    coords: np.ndarray | None = None

    def summary(self) -> dict:
        return {"kind": self.kind, "produced_by": self.produced_by, "accuracy": self.accuracy,
                "n_test": self.n_test, "seconds": self.seconds}


@dataclass
class ContrastResult:
    dataset: DatasetConfig
    map_title: str
    labels: np.ndarray
    class_names: list[str]
    rows: list[ContrastRow] = field(default_factory=list)

    def row(self, kind: str) -> ContrastRow:
        return next(r for r in self.rows if r.kind == kind)


def _features(plan: TourPlan, dataset: DatasetConfig, kind: str, ctx: JobContext, start: float, stop: float):
    """(features, labels, class names, cache key, compute seconds) of one feature kind."""
    if kind == "pixels":
        data, started = load_dataset(dataset), time.perf_counter()
        features = pixel_features(data, cancelled=ctx.cancelled)
        return features, data.labels, data.class_names, pixel_key(data), time.perf_counter() - started
    source = plan.source(dataset, kind)
    fs = extract(source.dataset, source.backbone, source.extraction, ctx.scaled(start, stop), ctx.cancelled)
    return fs.features, fs.labels, fs.class_names, fs.key, fs.meta.get("compute_seconds")


def run_contrast(plan: TourPlan, dataset: DatasetConfig, ctx: JobContext) -> ContrastResult:
    """Steps 2 and 3: probe accuracy and a map for pixels, random init and pretrained, shown as each is ready."""
    result, feature_sets = None, {}
    for i, kind in enumerate(KINDS):
        ctx.stage(f"{kind}: features")
        X, labels, class_names, key, seconds = _features(plan, dataset, kind, ctx, i / 4, (i + 0.8) / 4)
        ctx.stage(f"{kind}: linear probe")
        probe = cached_linear_probe(X, labels, key, ProbeConfig(seed=dataset.seed), cancelled=ctx.cancelled)
        if result is None:
            result = ContrastResult(dataset, "", labels, class_names)
        total = None if seconds is None else seconds + probe.seconds  # None: a cache from before times were kept
        result.rows.append(ContrastRow(kind, describe_kind(plan, dataset, kind), probe.test_accuracy,
                                       probe.n_test, total))
        feature_sets[kind] = X
        ctx.record(metrics={"rows": [r.summary() for r in result.rows]})  # the page shows each as it lands
    projection = dataclasses.replace(plan.projection, seed=dataset.seed)
    for i, kind in enumerate(KINDS):
        ctx.check_cancelled()
        n, dim = feature_sets[kind].shape
        ctx.stage(f"{kind}: map, estimated {estimate_seconds(n, dim, projection):.0f} s")
        ctx.progress(0.75 + 0.25 * i / 3)
        result.row(kind).coords = compute_projection(feature_sets[kind], projection)
    return result


@dataclass
class EfficiencyPoint:
    dataset: str
    kind: str
    produced_by: str
    k: int
    mean: float
    std: float
    accuracies: list[float]


def run_efficiency(plan: TourPlan, ctx: JobContext) -> list[EfficiencyPoint]:
    """Step 4: test accuracy with k labels per class (mean ± std over seeds), pretrained vs pixels, both sets."""
    points, pairs = [], [(d, k) for d in (plan.shapes, plan.digits) for k in ("pretrained", "pixels")]
    for i, (dataset, kind) in enumerate(pairs):
        ctx.stage(f"{kind} on {dataset.spec}")
        X, labels, *_ = _features(plan, dataset, kind, ctx, i / len(pairs), (i + 0.5) / len(pairs))
        rows = run_label_efficiency(X, labels, ks=plan.ks, seeds=plan.seeds, probe_config=ProbeConfig(seed=dataset.seed),
                                    progress=ctx.scaled((i + 0.5) / len(pairs), (i + 1) / len(pairs)),
                                    cancelled=ctx.cancelled)
        points += [EfficiencyPoint(dataset.spec, kind, describe_kind(plan, dataset, kind), row.k, row.mean, row.std,
                                   row.accuracies) for row in rows if row.method == "logreg"]
    return points


def run_frozen_vs_adapted(plan: TourPlan, ctx: JobContext):
    """Step 5: LP-FT on digits; its first stage is the linear probe at the same size, split and train set."""
    return run_finetune(plan.finetune_source(), plan.finetune, ctx)



# Rough costs on a 2-core CPU, for the estimate shown before a step's first run (caches make reruns quick).
EXTRACT_IMAGES_PER_S_128 = 235.0  # tf_efficientnet_lite0 forward at 128 px, fp32, channels_last
MODEL_LOAD_SECONDS = 2.0
PROBE_SECONDS = 2.0
TRAIN_COST = 7.0  # forward + backward + update + validation, relative to a forward pass (38 s measured for step 5)


def _extract_seconds(n: int, size: int) -> float:
    return MODEL_LOAD_SECONDS + n * (size / 128) ** 2 / EXTRACT_IMAGES_PER_S_128


def dataset_size(dataset: DatasetConfig) -> int:
    """Images in a built-in set from its spec alone (no loading): the limit, shapes' n, or MNIST-5k's 5,000."""
    options = dict(part.split("=") for part in dataset.spec.partition(":")[2].split(",") if "=" in part)
    return dataset.limit or int(options.get("n", 5000))


def estimate_step_seconds(plan: TourPlan, step: str) -> float:
    """Seconds a step takes from nothing cached; an estimate, shown before the user starts it."""
    shapes, digits = dataset_size(plan.shapes), dataset_size(plan.digits)
    if step == "neighbours":
        return _extract_seconds(shapes, plan.image_size)
    if step in ("shapes", "digits"):
        n = shapes if step == "shapes" else digits
        maps = sum(estimate_seconds(n, dim, plan.projection, include_compile=first)  # a compile is paid once
                   for first, dim in ((True, PIXEL_SIZE ** 2), (False, 1280), (False, 1280)))
        return 2 * _extract_seconds(n, plan.image_size) + 3 * PROBE_SECONDS + maps
    if step == "efficiency":
        return 2 * _extract_seconds(shapes + digits, plan.image_size) + 0.5 * len(plan.ks) * len(plan.seeds) * 4
    n_train = plan.finetune_limit * 0.8 * (1 - plan.finetune.val_size)
    per_image = (plan.finetune.image_size / 128) ** 2 / EXTRACT_IMAGES_PER_S_128
    return (_extract_seconds(plan.finetune_limit, plan.finetune.image_size) + PROBE_SECONDS
            + plan.finetune.epochs * n_train * per_image * TRAIN_COST)


# The steps as jobs, in the order "run every step" queues them (one after another, in one lane).
TOUR_STEPS = ("neighbours", "shapes", "digits", "efficiency", "finetune")
# Steps whose work reads back from the caches in about a second: a previous server's run is started again when
# the page shows them. The fine-tune caches nothing and only runs when asked.
RESTORED_STEPS = ("neighbours", "shapes", "digits", "efficiency")


def _step(plan: TourPlan, step: str) -> tuple[str, str, Callable[[JobContext], object]]:
    """(key, title, work) of one step."""
    if step == "neighbours":
        return plan.step_key("neighbours"), "tour 1: nearest neighbours", partial(run_neighbours, plan)
    if step in ("shapes", "digits"):
        dataset, number = (plan.shapes, 2) if step == "shapes" else (plan.digits, 3)
        return (plan.step_key("contrast", dataset.key()), f"tour {number}: contrast on {dataset.spec}",
                partial(run_contrast, plan, dataset))
    if step == "efficiency":
        return plan.step_key("efficiency"), "tour 4: label efficiency", partial(run_efficiency, plan)
    if step == "finetune":
        return plan.step_key("finetune"), "tour 5: linear probe vs LP-FT", partial(run_frozen_vs_adapted, plan)
    raise ValueError(f"unknown tour step {step!r}; one of {', '.join(TOUR_STEPS)}")


def step_spec(plan: TourPlan, step: str) -> JobSpec:
    """One step's job (`TOUR_STEPS`): the same whether its own button or "run every step" starts it."""
    key, title, work = _step(plan, step)
    return JobSpec(key, title, work, kind="tour", restore=step in RESTORED_STEPS)


def step_specs(plan: TourPlan) -> list[JobSpec]:
    """Every step's job, in the order "run every step" queues them."""
    return [step_spec(plan, step) for step in TOUR_STEPS]

"""The guided tour's steps as jobs, each a live computation on the offline data (cached like the rest).

1. what a backbone does: images in, vectors out, and each image's nearest neighbours among them;
2. and 3. raw pixels vs a random-init backbone vs the pretrained one, on cluttered shapes and on MNIST;
4. label efficiency: 1-25 labels per class, pretrained features vs pixels, on both;
5. frozen vs adapted: the linear probe vs LP-FT on digits;
6. is the difference real? The same two probes scored on 50, 200 and 1,000 test images;
7. a bigger or different backbone: every bundled backbone's probe on the shapes, each tested against step 2's.
Every number keeps the source that produced it and its 95 % interval; every difference a caption reads is tested
(McNemar's exact test on the same test images; Welch's t-test between means over label draws), so the page never
says "beats" where the test says "tie".
`step_work(plan, step)` is each step's work; tour_clock.step_spec makes it a job that reports the whole step's time
left (tour_clock.py), the same whether its own button or "run every step" starts it.
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import numpy as np

from ptm_core.base.messages import M_
from ptm_core.evals.baselines import PIXEL_SIZE, pixel_features, pixel_key, random_weights
from ptm_core.base.configs import (BackboneConfig, DatasetConfig, ExtractionConfig, FinetuneConfig, ProbeConfig,
                                   ProjectionConfig, Source, Keyed, describe_data, stable_hash)
from ptm_core.base.stats import DrawsTest, PairedTest, accuracy_interval, draws_test, paired_test
from ptm_core.data import load_dataset
from ptm_core.features.extraction import extract
from ptm_core.runs.jobs import JobContext
from ptm_core.evals.label_efficiency import run_label_efficiency
from ptm_core.finetune.finetuning import FinetuneResult
from ptm_core.flows.lab import run_finetune
from ptm_core.flows.pairs import probes_test
from ptm_core.maps.neighbours import nearest_neighbours
from ptm_core.models.bundled import bundled_names
from ptm_core.probes.linear import cached_linear_probe
from ptm_core.maps.projection import compute_projection
from ptm_core.maps.estimate import estimate_seconds

KINDS = ("pixels", "random", "pretrained")  # the three feature kinds steps 2-4 contrast
VECTOR_SHOWN = 64


@dataclass(frozen=True)
class TourPlan(Keyed):
    """What every step computes on. Cluttered shapes: textured backgrounds, distractors, any colour, 8 classes.

    Tuned so the pretrained probe is high but not perfect while random init and pixels sit near chance (12.5 %):
    features that ignore texture, colour and position are what ImageNet gives (benchmarks/RESULTS.md, "tour 2").
    1,000 images keep step 2 near 25 s on two cores from a cold server.
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
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # draws per point: five, for a t-interval that means something
    # 6 short epochs: 1 and 3 left LP-FT below the probe it starts from; adapting needs some training to pay.
    # Half of the 2,000 digits are test images: on 200 the gain (83.0 vs 82.0 %) was a tie (McNemar p = 0.86),
    # on 1,000 it is not (benchmarks/RESULTS.md, the "tour 5" row).
    finetune: FinetuneConfig = FinetuneConfig(mode="lp-ft", epochs=6, image_size=64, augment=False,
                                              val_every_steps=10, test_size=0.5)
    finetune_limit: int = 2000
    # Step 6: pretrained vs random init on all 5,000 digits, whose 1,000 test images are scored 50, 200, 1,000 at a
    # time. Measured: a tie on 50, told apart on 200 and on 1,000 (benchmarks/RESULTS.md, the "tour 6" rows).
    lesson: DatasetConfig = DatasetConfig("mnist5k")
    lesson_sizes: tuple[int, ...] = (50, 200, 1000)
    # Step 7: the offline zoo (three families, one fine-tuned on dogs) on step 2's shapes, at step 2's size.
    zoo: tuple[BackboneConfig, ...] = tuple(BackboneConfig(name, "bundled") for name in bundled_names())

    def source(self, dataset: DatasetConfig, kind: str = "pretrained") -> Source:
        backbone = random_weights(self.backbone) if kind == "random" else self.backbone
        return Source(dataset, backbone, ExtractionConfig(image_size=self.image_size))

    def finetune_source(self) -> Source:
        return self.source(dataclasses.replace(self.digits, limit=self.finetune_limit))

    def step_key(self, step: str, *parts) -> str:
        return stable_hash(["tour", step, self.key(), list(parts)])


SMALL_ENV = "PTM_TOUR_SMALL"  # "1": the page runs `small_plan()` (the browser tests; a slow machine's quick look)


def small_plan() -> TourPlan:
    """Every step in seconds rather than minutes: a few hundred images at 32 px, PCA maps, three label budgets, one
    epoch. Its numbers are rough (tens of test images), which is what its captions' tests then say."""
    plan = TourPlan()
    return TourPlan(shapes=DatasetConfig("shapes:n=200,classes=4,size=32,clutter=1"),
                    digits=DatasetConfig("mnist5k", limit=300), image_size=32,
                    projection=ProjectionConfig(method="pca"), ks=(1, 2, 5), seeds=(0, 1, 2),
                    finetune=dataclasses.replace(plan.finetune, epochs=1, image_size=32), finetune_limit=300,
                    lesson=DatasetConfig("mnist5k", limit=600), lesson_sizes=(30, 120),
                    zoo=(plan.backbone, BackboneConfig("squeezenet1_1", "bundled")))


def page_plan() -> TourPlan:
    """The plan the tour page runs: `TourPlan()`, or `small_plan()` when the environment says PTM_TOUR_SMALL=1."""
    return small_plan() if os.environ.get(SMALL_ENV) == "1" else TourPlan()


def describe_kind(plan: TourPlan, dataset: DatasetConfig, kind: str) -> str:
    """What produced a step's number, in the words the rest of the app uses."""
    if kind == "pixels":
        return M_("{size}×{size} grey pixels of {data}", size=PIXEL_SIZE, data=describe_data(dataset))
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
    ctx.stage(M_("extracting features"))
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

    @property
    def ci95(self) -> tuple[float, float]:
        """Wilson's 95 % interval of the accuracy on these n_test images."""
        return accuracy_interval(self.accuracy, self.n_test)

    def summary(self) -> dict:
        return {"kind": self.kind, "produced_by": self.produced_by, "accuracy": self.accuracy,
                "ci95": list(self.ci95), "n_test": self.n_test, "seconds": self.seconds}


@dataclass
class ContrastResult:
    dataset: DatasetConfig
    map_title: str
    labels: np.ndarray
    class_names: list[str]
    rows: list[ContrastRow] = field(default_factory=list)
    # Pretrained against each other kind ("random", "pixels"), McNemar's test on the one test split they share.
    tests: dict[str, PairedTest] = field(default_factory=dict)

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
    result, feature_sets, probes = None, {}, {}
    for i, kind in enumerate(KINDS):
        ctx.stage(M_("{kind}: features", kind=kind))
        X, labels, class_names, key, seconds = _features(plan, dataset, kind, ctx, i / 4, (i + 0.8) / 4)
        ctx.stage(M_("{kind}: linear probe", kind=kind))
        probe = cached_linear_probe(X, labels, key, ProbeConfig(seed=dataset.seed), cancelled=ctx.cancelled)
        if result is None:
            result = ContrastResult(dataset, "", labels, class_names)
        total = None if seconds is None else seconds + probe.seconds  # None: a cache from before times were kept
        result.rows.append(ContrastRow(kind, describe_kind(plan, dataset, kind), probe.test_accuracy,
                                       probe.n_test, total))
        feature_sets[kind], probes[kind] = X, probe
        ctx.record(metrics={"rows": [r.summary() for r in result.rows]})  # the page shows each as it lands
    result.tests = {kind: probes_test(result.labels, probes["pretrained"], probes[kind]) for kind in KINDS[:2]}
    projection = dataclasses.replace(plan.projection, seed=dataset.seed)
    for i, kind in enumerate(KINDS):
        ctx.check_cancelled()
        n, dim = feature_sets[kind].shape
        ctx.stage(M_("{kind}: map, estimated {seconds:.0f} s", kind=kind, seconds=estimate_seconds(n, dim, projection)))
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
    ci95: tuple[float, float] = (float("nan"), float("nan"))  # Student's t over the draws' accuracies


def run_efficiency(plan: TourPlan, ctx: JobContext) -> list[EfficiencyPoint]:
    """Step 4: test accuracy with k labels per class (mean ± std over seeds), pretrained vs pixels, both sets."""
    points, pairs = [], [(d, k) for d in (plan.shapes, plan.digits) for k in ("pretrained", "pixels")]
    for i, (dataset, kind) in enumerate(pairs):
        ctx.stage(M_("{kind} on {data}", kind=kind, data=dataset.spec))
        X, labels, *_ = _features(plan, dataset, kind, ctx, i / len(pairs), (i + 0.5) / len(pairs))
        rows = run_label_efficiency(X, labels, ks=plan.ks, seeds=plan.seeds, probe_config=ProbeConfig(seed=dataset.seed),
                                    progress=ctx.scaled((i + 0.5) / len(pairs), (i + 1) / len(pairs)),
                                    cancelled=ctx.cancelled)
        points += [EfficiencyPoint(dataset.spec, kind, describe_kind(plan, dataset, kind), row.k, row.mean, row.std,
                                   row.accuracies, tuple(row.ci95)) for row in rows if row.method == "logreg"]
    return points


@dataclass(frozen=True)
class EfficiencyClaim:
    """Step 4's sentence for one dataset, over the whole label range: at each budget k, pretrained features against
    pixels with the same k labels per class, by Welch's t-test over the draws (`tests`, in order of k)."""

    tests: tuple[tuple[int, DrawsTest], ...]

    def ks(self, verdict: str) -> list[int]:
        """The budgets where the test's verdict is `verdict` ("a": pretrained leads, "b": pixels lead, "tie")."""
        return [k for k, test in self.tests if test.verdict == verdict]


def efficiency_claim(points: list[EfficiencyPoint], spec: str) -> EfficiencyClaim:
    accuracies = {(p.kind, p.k): p.accuracies for p in points if p.dataset == spec}
    ks = sorted(k for kind, k in accuracies if kind == "pretrained" and ("pixels", k) in accuracies)
    return EfficiencyClaim(tuple((k, draws_test(accuracies[("pretrained", k)], accuracies[("pixels", k)]))
                                 for k in ks))


def run_frozen_vs_adapted(plan: TourPlan, ctx: JobContext) -> FinetuneResult:
    """Step 5: LP-FT on digits; its first stage is the linear probe at the same size, split and train set."""
    return run_finetune(plan.finetune_source(), plan.finetune, ctx)


def adapted_test(result: FinetuneResult) -> PairedTest:
    """Step 5's claim: LP-FT (a) against the frozen probe it started from (b), on the same test images."""
    return paired_test(result.test_labels, result.predictions, result.lp_predictions)


@dataclass(frozen=True)
class LessonSize:
    """The two probes scored on the first `n` test images (a seeded order): their intervals and McNemar's test."""

    n: int
    test: PairedTest


@dataclass
class LessonResult:
    produced_by: dict[str, str]  # kind -> what produced it
    n_train: int
    sizes: list[LessonSize]


def run_lesson(plan: TourPlan, ctx: JobContext) -> LessonResult:
    """Step 6: pretrained vs random init, one probe each on the same training images, scored on ever more of the
    same test images: the gap changes little, the intervals shrink, and the test's verdict follows them."""
    kinds, probes = ("pretrained", "random"), {}
    for i, kind in enumerate(kinds):
        ctx.stage(M_("{kind}: features", kind=kind))
        X, labels, _names, key, _seconds = _features(plan, plan.lesson, kind, ctx, 0.45 * i, 0.45 * i + 0.35)
        ctx.stage(M_("{kind}: linear probe", kind=kind))
        probes[kind] = cached_linear_probe(X, labels, key, ProbeConfig(seed=plan.lesson.seed), cancelled=ctx.cancelled)
    first, second = probes["pretrained"], probes["random"]
    truth = labels[first.test_indices]
    probes_test(labels, first, second)  # checks that both were scored on the same test images
    order = np.random.default_rng(plan.lesson.seed).permutation(len(truth))
    sizes = []
    for n in plan.lesson_sizes:
        chosen = order[:min(n, len(order))]
        test = paired_test(truth[chosen], first.predictions[chosen], second.predictions[chosen])
        sizes.append(LessonSize(len(chosen), test))
    return LessonResult({kind: describe_kind(plan, plan.lesson, kind) for kind in kinds}, first.n_train, sizes)



@dataclass(frozen=True)
class ZooRow:
    backbone: BackboneConfig
    produced_by: str
    accuracy: float
    n_test: int
    ci95: tuple[float, float]
    test: PairedTest | None = None  # McNemar's test against step 2's backbone (a), on the same test images


@dataclass
class ZooResult:
    """Step 7: each backbone's linear probe on the shapes, step 2's first; every other row tested against it."""

    reference: str  # step 2's backbone
    rows: list[ZooRow]


def run_zoo(plan: TourPlan, ctx: JobContext) -> ZooResult:
    """Step 7: does a bigger or different pretrained backbone see the shapes better? One probe per backbone."""
    backbones = list(dict.fromkeys((plan.backbone, *plan.zoo)))  # step 2's first: the one each is tested against
    rows, reference = [], None
    for i, backbone in enumerate(backbones):
        source = Source(plan.shapes, backbone, ExtractionConfig(image_size=plan.image_size))
        ctx.stage(M_("{kind}: features", kind=backbone.name))
        fs = extract(source.dataset, source.backbone, source.extraction, ctx.scaled(i / len(backbones),
                     (i + 0.8) / len(backbones)), ctx.cancelled, pace_pending=ctx.pace_pending)
        ctx.stage(M_("{kind}: linear probe", kind=backbone.name))
        probe = cached_linear_probe(fs.features, fs.labels, fs.key, ProbeConfig(seed=plan.shapes.seed),
                                    cancelled=ctx.cancelled)
        test = None if reference is None else probes_test(fs.labels, probe, reference)
        reference = reference or probe
        rows.append(ZooRow(backbone, source.describe(), probe.test_accuracy, probe.n_test, probe.test_accuracy_ci95,
                           test))
        ctx.record(metrics={"rows": [{"backbone": r.backbone.name, "accuracy": r.accuracy, "n_test": r.n_test}
                                     for r in rows]})
    return ZooResult(plan.backbone.name, rows)


# The steps as jobs, in the order "run every step" queues them (one after another, in one lane).
TOUR_STEPS = ("neighbours", "shapes", "digits", "efficiency", "finetune", "lesson", "zoo")
# Steps whose work reads back from the caches in about a second: a previous server's run is started again when
# the page shows them. The fine-tune caches nothing and only runs when asked.
RESTORED_STEPS = ("neighbours", "shapes", "digits", "efficiency", "lesson", "zoo")


def step_work(plan: TourPlan, step: str) -> tuple[str, str, Callable[[JobContext], object], bool]:
    """(key, title, work, restore) of one step; tour_clock.step_spec makes it a job with its clock."""
    if step == "neighbours":
        key, title, work = plan.step_key("neighbours"), M_("tour 1: nearest neighbours"), partial(run_neighbours, plan)
    elif step in ("shapes", "digits"):
        dataset, number = (plan.shapes, 2) if step == "shapes" else (plan.digits, 3)
        key = plan.step_key("contrast", dataset.key())
        title = M_("tour {number}: contrast on {data}", number=number, data=dataset.spec)
        work = partial(run_contrast, plan, dataset)
    elif step == "efficiency":
        key, title, work = plan.step_key("efficiency"), M_("tour 4: label efficiency"), partial(run_efficiency, plan)
    elif step == "finetune":
        key, title = plan.step_key("finetune"), M_("tour 5: linear probe vs LP-FT")
        work = partial(run_frozen_vs_adapted, plan)
    elif step == "lesson":
        key, title, work = plan.step_key("lesson"), M_("tour 6: is the difference real?"), partial(run_lesson, plan)
    elif step == "zoo":
        key, title = plan.step_key("zoo"), M_("tour 7: which backbone sees the shapes best?")
        work = partial(run_zoo, plan)
    else:
        raise ValueError(f"unknown tour step {step!r}; one of {', '.join(TOUR_STEPS)}")
    return key, title, work, step in RESTORED_STEPS

"""Map pitfalls, live (issue 24, item 3): the pretrained features of tour step 2 or 3, drawn again with few and with
many UMAP neighbours beside the step's own map; what a map setting moves (the picture) and what it cannot (the
linear probe's accuracy, which reads the features, not the map).

Each map comes with the faithfulness numbers the explorer's "How faithful" panel shows (maps.faithfulness:
trustworthiness, k-NN accuracy in the map vs in the features), and the two re-drawn maps with how many of each
image's map neighbours they share (`kept_share`), the number that decides whether the page says the picture
changed. The maps are cached by feature key and settings like every other map (maps.projection.project); the work
is a job with a StepClock over its phases (tour_clock), so it shows the time left like a tour step and survives a
page switch.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial

import numpy as np

from ptm_core.base.configs import DatasetConfig, Keyed, ProbeConfig, ProjectionConfig, describe_map, stable_hash
from ptm_core.base.messages import M_
from ptm_core.base.stats import accuracy_interval
from ptm_core.features.extraction import extract
from ptm_core.features.featureset import FeatureSet
from ptm_core.flows.explore import compute_map
from ptm_core.flows.tour import TourPlan, describe_kind
from ptm_core.flows.tour_clock import PACE, clocked
from ptm_core.flows.tour_costs import MODEL_LOAD_SECONDS, dataset_size
from ptm_core.maps.estimate import estimate_seconds
from ptm_core.maps.faithfulness import KNN_MAX
from ptm_core.maps.neighbours import knn_sets
from ptm_core.probes.linear import cached_linear_probe
from ptm_core.runs.jobs import MAP, JobContext, JobSpec

# The backbone's feature width before its features are read (tour_costs assumes the same for its map phases): the
# time estimate on the button. The job's own clock uses it too; the maps then run on the real width.
FEATURE_DIM = 1280
# Features and probe read back from their caches (the step has run before the card shows): extract() builds the
# backbone to key its cache first, about a model load (seen: 1-2.5 s on the loaded 2-core box).
READ_SECONDS = MODEL_LOAD_SECONDS
# map_faithfulness's cost, mostly trustworthiness's pairwise distances on its sample of up to 2,000 points:
# measured 0.03 s at 200 points, 0.10 at 1,000, 0.50 at 2,000 (1,280 dims, the dev box).
FAITHFULNESS_SECONDS_PER_PAIR = 1.2e-7
TRUST_SAMPLE = 2000


@dataclass(frozen=True)
class PitfallConfig(Keyed):
    """The two re-drawn maps: UMAP with `few` and with `many` neighbours, everything else as the step's map.

    n_neighbors is the setting umap-learn's own guide ("Basic UMAP Parameters") shows moving a map most: few
    neighbours keep very local structure and break classes into islands, many pull in more of the global layout.
    5 and 100 sit a factor of 3 below and about 7 above the default 15 that step 2's map uses, inside the range
    (2-200) that guide draws MNIST with, where both maps are still readable; 100 stays below half of the small
    plan's 200 images. Each is capped at n - 1 (all a map of n points can have), and the capped value is the one
    shown. `k`: the neighbours that trustworthiness, the maps' k-NN and the agreement between the maps read.
    `changed_below`: the two maps are said to differ when images keep, on average, less than this share of their
    k nearest map neighbours from one map to the other (9 of 10 kept reads as the same picture).
    """

    few: int = 5
    many: int = 100
    seed: int = 0
    k: int = 10
    changed_below: float = 0.9


@dataclass
class PitfallMap:
    setting: str  # "step" (the step's own map), "few" or "many"
    config: ProjectionConfig
    coords: np.ndarray
    faithfulness: dict  # maps.faithfulness.map_faithfulness's keys
    seconds: float | None  # the map's own compute time (that of the run that cached it)
    kept_from_step: float  # share of each image's k map neighbours also among its k in the step's map (mean)

    @property
    def n_neighbors(self) -> int | None:
        return self.config.n_neighbors if self.config.method == "umap" else None

    @property
    def trustworthiness(self) -> float:
        return self.faithfulness["trustworthiness"]

    @property
    def knn_accuracy_map(self) -> float | None:
        return self.faithfulness["knn_accuracy_map"]


@dataclass
class PitfallResult:
    dataset: DatasetConfig
    labels: np.ndarray
    class_names: list[str]
    maps: list[PitfallMap]
    k: int
    kept_share: float  # the few- and many-neighbour maps: share of each image's k map neighbours both keep (mean)
    changed_below: float
    # The step's linear probe on these features (the same cached probe step 2 or 3 shows) and what produced it.
    accuracy: float
    n_test: int
    produced_by: str
    feature_dim: int

    def map(self, setting: str) -> PitfallMap:
        return next(m for m in self.maps if m.setting == setting)

    @property
    def ci95(self) -> tuple[float, float]:
        """Wilson's 95 % interval of the probe's accuracy, as step 2 and 3 show it."""
        return accuracy_interval(self.accuracy, self.n_test)

    @property
    def picture_changed(self) -> bool:
        """Whether the two re-drawn maps measurably differ: images keep less than `changed_below` of their map
        neighbours from one to the other."""
        return self.kept_share < self.changed_below

    @property
    def trust_change(self) -> float:
        """Trustworthiness of the many-neighbour map minus the few-neighbour map's."""
        return self.map("many").trustworthiness - self.map("few").trustworthiness


def pretrained_features(plan: TourPlan, dataset: DatasetConfig, progress=None, cancelled=None) -> FeatureSet:
    """The pretrained features that steps 2 and 3 probe and map, read back from the extraction cache once the step
    has run (computed, and cached, if not)."""
    source = plan.source(dataset)
    return extract(source.dataset, source.backbone, source.extraction, progress, cancelled)


def pitfall_settings(plan: TourPlan, dataset: DatasetConfig, n: int,
                     config: PitfallConfig = PitfallConfig()) -> list[tuple[str, ProjectionConfig]]:
    """(setting, map config) of the three maps: the step's own (as run_contrast draws it), then UMAP with few and with
    many neighbours, as the step's map in every other setting when that is UMAP (a PCA step map: UMAP's defaults)."""
    step = dataclasses.replace(plan.projection, seed=dataset.seed)
    base = step if step.method == "umap" else ProjectionConfig(method="umap")
    cap = max(2, n - 1)
    return [("step", step)] + [(setting, dataclasses.replace(base, n_neighbors=min(value, cap), seed=config.seed))
                               for setting, value in (("few", config.few), ("many", config.many))]


def pitfall_phases(plan: TourPlan, dataset: DatasetConfig, config: PitfallConfig = PitfallConfig(),
                   dim: int = FEATURE_DIM) -> list[tuple[str, float]]:
    """(what, seconds) of each phase of the job, in the order its work enters them: reading the features and the
    probe, then each map with its faithfulness (maps.estimate; UMAP's compile counted once, on the first UMAP)."""
    n = dataset_size(dataset)
    pairs = min(n, TRUST_SAMPLE) ** 2
    phases, umap_seen = [(M_("pretrained features and their probe"), READ_SECONDS)], False
    for _setting, projection in pitfall_settings(plan, dataset, n, config):
        first_umap = projection.method == "umap" and not umap_seen
        umap_seen = umap_seen or projection.method == "umap"
        seconds = estimate_seconds(n, dim, projection, include_compile=first_umap or projection.method != "umap")
        phases.append((M_("map: {map}", map=describe_map(projection)),
                       seconds + FAITHFULNESS_SECONDS_PER_PAIR * pairs))
    return phases


def pitfall_seconds(plan: TourPlan, dataset: DatasetConfig, config: PitfallConfig = PitfallConfig()) -> float:
    """The job's whole estimate at this machine's pace (tour_clock's, measured by the tour's earlier phases)."""
    return PACE.factor() * sum(seconds for _what, seconds in pitfall_phases(plan, dataset, config))


def kept_share(coords_a: np.ndarray, coords_b: np.ndarray, k: int, seed: int = 0) -> float:
    """Mean share of each image's k nearest neighbours in map a (euclidean) that are also among its k nearest in map
    b: Lee and Verleysen's neighbourhood overlap Q_NX(K) (Lee & Verleysen 2009, "Quality assessment of dimensionality
    reduction: rank-based criteria", Neurocomputing 72), here between two maps instead of a map and its data. The
    neighbour search is scikit-learn's (maps.neighbours.knn_sets); on a seeded sample of KNN_MAX points at most."""
    n = len(coords_a)
    idx = np.arange(n) if n <= KNN_MAX else np.sort(np.random.default_rng(seed).choice(n, KNN_MAX, replace=False))
    k = max(1, min(k, len(idx) - 1))
    a, b = knn_sets(coords_a[idx], k, "euclidean"), knn_sets(coords_b[idx], k, "euclidean")
    shared = np.array([len(np.intersect1d(row_a, row_b, assume_unique=True)) for row_a, row_b in zip(a, b)])
    return float(shared.mean() / k)


def run_map_pitfalls(plan: TourPlan, dataset: DatasetConfig, config: PitfallConfig, ctx: JobContext) -> PitfallResult:
    """The step's pretrained features, its probe (read back from the probe cache: the step's own number), and the
    three maps with their faithfulness; one stage per phase of `pitfall_phases`."""
    ctx.stage(M_("pretrained features and their probe"))
    fs = pretrained_features(plan, dataset, ctx.scaled(0.0, 0.05), ctx.cancelled)
    probe = cached_linear_probe(fs.features, fs.labels, fs.key, ProbeConfig(seed=dataset.seed), cancelled=ctx.cancelled)
    n, dim = fs.features.shape
    maps, step_coords = [], None
    for setting, projection in pitfall_settings(plan, dataset, n, config):
        ctx.check_cancelled()
        ctx.stage(M_("map: {map}", map=describe_map(projection)))
        drawn = compute_map(fs, projection, cancelled=ctx.cancelled)
        coords = drawn.coords[:, :2]
        step_coords = coords if step_coords is None else step_coords
        maps.append(PitfallMap(setting, projection, coords, drawn.faithfulness, drawn.meta.get("seconds"),
                               kept_share(coords, step_coords, config.k, config.seed)))
    kept = kept_share(maps[1].coords, maps[2].coords, config.k, config.seed)
    result = PitfallResult(dataset, fs.labels, fs.class_names, maps, config.k, kept, config.changed_below,
                           probe.test_accuracy, probe.n_test, describe_kind(plan, dataset, "pretrained"), int(dim))
    ctx.record(metrics={"kept_share": kept, "trustworthiness": {m.setting: m.trustworthiness for m in maps},
                        "n_neighbors": {m.setting: m.n_neighbors for m in maps}, "accuracy": probe.test_accuracy,
                        "n_test": probe.n_test})
    return result


def pitfalls_spec(plan: TourPlan, dataset: DatasetConfig, config: PitfallConfig = PitfallConfig()) -> JobSpec:
    """The card's job, in the map lane (one UMAP at a time, after the server's UMAP warm-up); restored after a
    server restart, since its features, probe and maps read back from their caches."""
    key = stable_hash(["map-pitfalls", plan.key(), dataset.key(), config.key()])
    title = M_("Map pitfalls on {data}", data=dataset.spec)
    return JobSpec(key, title, partial(run_clocked, plan, dataset, config), kind="map", lane=MAP, restore=True,
                   config={"dataset": dataset.to_dict(), "pitfalls": config.to_dict()})


def run_clocked(plan: TourPlan, dataset: DatasetConfig, config: PitfallConfig, ctx: JobContext) -> PitfallResult:
    """`run_map_pitfalls` under a StepClock whose phases are estimated when the job starts, not when its spec was
    made: queued behind the server's UMAP warm-up, it no longer pays the compile that the button's estimate counted."""
    return clocked(partial(run_map_pitfalls, plan, dataset, config), pitfall_phases(plan, dataset, config))(ctx)

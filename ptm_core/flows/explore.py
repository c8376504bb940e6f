"""The explore flow (Features & probe page) as two jobs: features (cached) -> linear probe, then the map of those features.

They run in different job lanes so that a map never waits for an extraction and a probe never
waits for UMAP's one-off compile; the page shows an instant PCA map until the chosen map is ready.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import numpy as np

from ptm_core.base.messages import M_
from ptm_core.runs.artifacts import artifact_dir
from ptm_core.base.configs import ProbeConfig, ProjectionConfig, Source, stable_hash
from ptm_core.features.featureset import FeatureSet
from ptm_core.features.extraction import extract
from ptm_core.features.extraction import warm_up as extraction_warm_up
from ptm_core.maps.faithfulness import map_faithfulness
from ptm_core.runs.jobs import ACTIVE, Job, JobContext, JobManager, JobSpec
from ptm_core.features.preview import ProgressivePreview
from ptm_core.probes.linear import ProbeResult, cached_linear_probe, sweep_message
from ptm_core.maps.projection import project
from ptm_core.maps.estimate import estimate_fraction, estimate_seconds, place_seconds


@dataclass(frozen=True)
class ExploreRequest:
    source: Source = Source()
    probe: ProbeConfig = ProbeConfig()

    def key(self) -> str:
        return stable_hash(["explore", self.source.key(), self.probe.key()])

    def to_dict(self) -> dict:
        return {"source": self.source.to_dict(), "probe": self.probe.to_dict()}

    def title(self) -> str:
        return self.source.describe()


@dataclass
class ExploreResult:
    request: ExploreRequest
    features: FeatureSet
    probe: ProbeResult


def warm_up(source: Source = Source()) -> None:
    """What a run of `source` would do before its first batch, done ahead (the app does it for its default at
    start-up, while the user reads the page): see extraction.warm_up."""
    extraction_warm_up(source.dataset, source.backbone, source.extraction)


def run_explore(request: ExploreRequest, ctx: JobContext) -> ExploreResult:
    ctx.stage(M_("extracting features"))
    source = request.source
    # While features are computed, a probe and a PCA map of the images done so far (the page shows them).
    features = extract(source.dataset, source.backbone, source.extraction, progress=ctx.scaled(0.0, 0.85),
                       cancelled=ctx.cancelled, preview=ProgressivePreview(ctx.preview, seed=request.probe.seed),
                       pace_pending=ctx.pace_pending)
    from_cache = bool(features.meta.get("from_cache"))
    how = M_("cache") if from_cache else M_("{rate:.0f} img/s", rate=features.meta.get("images_per_s", 0))
    ctx.stage(M_("features ready: {n} x {dim} ({how}, {path})", n=features.features.shape[0],
                 dim=features.features.shape[1], how=how,
                 path=features.meta.get("precision_label", "fp32")))  # which path made them, also when cached
    ctx.progress(0.85, M_("training the linear probe"))
    step = ctx.scaled(0.85, 1.0)
    probe = cached_linear_probe(features.features, features.labels, features.key, request.probe, cancelled=ctx.cancelled,
                                callback=lambda done, total: step(done / total, sweep_message(done, total)))
    ctx.stage(M_("linear probe: test accuracy {accuracy:.3f} (C={C:g})", accuracy=probe.test_accuracy, C=probe.best_C))
    # Times are those of the runs that computed each part, also when this job read them from the cache.
    ctx.record(
        metrics={"test_accuracy": probe.test_accuracy, "best_C": probe.best_C, "n_train": probe.n_train,
                 "n_test": probe.n_test, "probe_seconds": probe.seconds, "probe_from_cache": probe.from_cache,
                 "n_images": int(features.features.shape[0]), "feature_dim": int(features.features.shape[1]),
                 "images_per_s": features.meta.get("images_per_s"), "feature_seconds": features.meta.get("compute_seconds"),
                 "features_from_cache": from_cache, "from_cache": from_cache or probe.from_cache,
                 "precision": features.meta.get("precision")},
        artifacts={"features": str(artifact_dir("features") / f"{features.key}.npz"), "feature_key": features.key})
    return ExploreResult(request, features, probe)


def explore_spec(request: ExploreRequest) -> JobSpec:
    """The explore job of `request` in the compute lane; restored after a server restart (its features and
    probe read back from the caches in about a second)."""
    return JobSpec(request.key(), request.title(), partial(run_explore, request), kind="explore", restore=True,
                   config=request.to_dict())


def active_explore(manager: JobManager) -> Job | None:
    """The newest explore job queued or running in `manager`: what a page whose settings changed since shows."""
    return next((job for job in manager.jobs() if job.kind == "explore" and job.status in ACTIVE), None)


@dataclass
class MapResult:
    coords: np.ndarray  # N x n_components
    meta: dict  # projection meta: method, seconds, subsampled, n_fit, placement, cache_hit, ...
    faithfulness: dict


def map_key(feature_key: str, config: ProjectionConfig) -> str:
    return stable_hash(["map", feature_key, config.key()])


@contextmanager
def _progress_by_estimate(ctx: JobContext, estimate: float, start: float, stop: float, message: str):
    """Move progress along by the estimate's elapsed share (maps.estimate.estimate_fraction) while a call that
    reports none (UMAP, t-SNE) runs.

    Yields the event that stops it, for a call that starts reporting its own progress part-way.
    """
    finished = threading.Event()
    began = time.monotonic()

    def tick() -> None:
        while not finished.wait(0.5):
            elapsed = time.monotonic() - began
            # Past its estimate the bar still moves, and says the estimate was short rather than seeming to hang.
            late = f" (over the estimated {estimate:.0f} s)" if elapsed > estimate else ""
            ctx.progress(start + (stop - start) * estimate_fraction(elapsed, estimate), message + late)
    threading.Thread(target=tick, daemon=True).start()
    try:
        yield finished
    finally:
        finished.set()


def compute_map(features: FeatureSet, config: ProjectionConfig, progress=None, cancelled=None) -> MapResult:
    """The map of a feature set and how faithful it is, without a job (PCA takes about a second).

    `progress(done, total)` and `cancelled()`: see `projection.project` (placing points beyond the fit sample).
    """
    coords, meta = project(features.features, features.key, config, progress=progress, cancelled=cancelled)
    return MapResult(coords, meta, map_faithfulness(features.features, coords[:, :2], features.labels, seed=config.seed))


def run_map(features: FeatureSet, config: ProjectionConfig, ctx: JobContext) -> MapResult:
    """`compute_map` as a job: the fit moves by the time estimate (UMAP and t-SNE report none), then
    placing the other points moves by the chunks placed ("placing 340,000 / 980,000 points")."""
    n, dim = features.features.shape
    estimate = estimate_seconds(n, dim, config)
    # The bar's share for the fit: the estimate's fit part; placing takes the rest up to 95 %.
    split = 0.95 * (1 - place_seconds(n, dim, config) / max(estimate, 1e-9))
    label = M_("{method} of {n:,} points", method=config.method.upper(), n=n)
    ctx.stage(M_("{label}, estimated {seconds:.0f} s", label=label, seconds=estimate))
    with _progress_by_estimate(ctx, estimate - place_seconds(n, dim, config), 0.0, split, label) as fit_ticker:
        def placed(done: int, total: int) -> None:
            if not fit_ticker.is_set():  # the fit is over: a new stage, so the time left is the placing pace
                fit_ticker.set()
                ctx.stage(M_("{label}: fitted on {fitted:,}, placing the other {total:,}", label=label,
                             fitted=n - total, total=total))
            ctx.progress(split + (0.95 - split) * done / total, M_("placing {done:,} / {total:,} points", done=done,
                                                                    total=total))
        result = compute_map(features, config, progress=placed, cancelled=ctx.cancelled)
    ctx.record(metrics={"map_seconds": result.meta.get("seconds"), "map_estimate_seconds": estimate,
                        "trustworthiness": result.faithfulness["trustworthiness"]},
               artifacts={"feature_key": features.key})
    return result

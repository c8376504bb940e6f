"""Which map job a page shows: the map's job spec, and whether it starts by itself or waits for a click.

A PCA map takes about a second and a page draws it at once (`compute_map`); UMAP and t-SNE run as jobs in the
map lane (see ptm_core.runs.jobs), so a long extraction never holds up a map of features already computed.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from ptm_core.base.messages import M_
from ptm_core.base.configs import ProjectionConfig, describe_map
from ptm_core.features.featureset import FeatureSet
from ptm_core.flows.explore import map_key, run_map
from ptm_core.maps.estimate import estimate_seconds
from ptm_core.maps.projection import projection_path
from ptm_core.runs.jobs import ACTIVE, DONE, MAP, Job, JobManager, JobSpec

AUTO_DRAW_SECONDS = 20  # maps estimated under this start by themselves; longer ones wait for the button


def map_spec(fs: FeatureSet, config: ProjectionConfig, source: str) -> JobSpec:
    """The job computing `config`'s map of `fs` (`source` names where the features came from, for its title).

    Restored after a server restart: a finished map reads back from the projection cache in about a second.
    """
    return JobSpec(map_key(fs.key, config), M_("{what} · {source}", what=M_("{map} map", map=describe_map(config)), source=source),
                   partial(run_map, fs, config),
                   kind="map", lane=MAP, restore=True, config={"feature_key": fs.key, "projection": config.to_dict()})


@dataclass(frozen=True)
class MapPlan:
    """What a page does about one map: show `job` (queued, running or done) when there is one; else start
    `spec` by itself when `starts_itself`, or offer a button saying the estimate (`estimate_s`)."""

    spec: JobSpec
    job: Job | None = None
    estimate_s: float = 0.0
    starts_itself: bool = False


def starts_itself(fs: FeatureSet, config: ProjectionConfig, estimate_s: float) -> bool:
    """Cheap enough to start unasked: estimated under AUTO_DRAW_SECONDS, or already in the projection cache."""
    return estimate_s <= AUTO_DRAW_SECONDS or projection_path(fs.key, config).exists()


def map_plan(fs: FeatureSet, config: ProjectionConfig, source: str, manager: JobManager) -> MapPlan:
    """The plan for this map in `manager`. A map that failed or was cancelled on this server never starts again
    by itself, however cheap: the user's click does it."""
    spec = map_spec(fs, config, source)
    job = manager.find(spec.key)
    if job is not None and (job.status == DONE or job.status in ACTIVE):
        return MapPlan(spec, job=job)
    estimate = estimate_seconds(*fs.features.shape, config)
    return MapPlan(spec, estimate_s=estimate, starts_itself=job is None and starts_itself(fs, config, estimate))

"""The flows that give pages their job specs: which map job starts by itself, the server's warm-ups, explore and
compare (the pages only attach to what these return)."""
from __future__ import annotations

import threading
import time

import numpy as np

from ptm_core.base import PTMError, ProbeConfig, ProjectionConfig
from ptm_core.flows import (AUTO_DRAW_SECONDS, DONE, RUNNING, CompareRequest, ExploreRequest, FeatureSet, JobManager,
                            active_explore, compare_spec, explore_spec, map_key, map_plan, map_spec,
                            start_background_work, warm_up_specs)
from ptm_core.flows import maps as map_flow
from ptm_core.flows import server
from ptm_core.maps.projection import projection_path
from ptm_core.runs.jobs import COMPUTE, MAP
from ptm_core.runs.store import RunStore

TIMEOUT = 5.0


def _features(n: int = 40, key: str = "fs-key") -> FeatureSet:
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 2
    return FeatureSet(rng.normal(size=(n, 8)).astype(np.float32), labels, ["a", "b"], [f"i{i}" for i in range(n)], key)


def test_the_map_spec_is_a_restorable_map_lane_job():
    fs, config = _features(), ProjectionConfig(method="umap", seed=3)
    spec = map_spec(fs, config, "the source")
    assert spec.key == map_key(fs.key, config) and spec.key != map_key("other", config)
    assert (spec.lane, spec.kind, spec.restore, spec.record) == (MAP, "map", True, True)
    assert spec.title.endswith("map · the source")
    assert spec.config == {"feature_key": fs.key, "projection": config.to_dict()}


def test_a_cheap_map_starts_by_itself_a_long_one_only_when_cached(monkeypatch):
    fs, config = _features(), ProjectionConfig(method="umap")
    manager = JobManager()
    monkeypatch.setattr(map_flow, "estimate_seconds", lambda n, dim, cfg: AUTO_DRAW_SECONDS - 1)
    cheap = map_plan(fs, config, "src", manager)
    assert cheap.starts_itself and cheap.job is None and cheap.estimate_s == AUTO_DRAW_SECONDS - 1

    monkeypatch.setattr(map_flow, "estimate_seconds", lambda n, dim, cfg: AUTO_DRAW_SECONDS + 1)
    long = map_plan(fs, config, "src", manager)
    assert not long.starts_itself and long.job is None and long.estimate_s == AUTO_DRAW_SECONDS + 1
    path = projection_path(fs.key, config)  # the same map computed before: read back in about a second
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    assert map_plan(fs, config, "src", manager).starts_itself
    assert not map_plan(fs, ProjectionConfig(method="tsne"), "src", manager).starts_itself  # another map's cache


def test_a_map_job_found_is_shown_and_a_failed_one_waits_for_the_click(monkeypatch, wait_until):
    fs, config = _features(), ProjectionConfig(method="umap")
    monkeypatch.setattr(map_flow, "estimate_seconds", lambda n, dim, cfg: 0.0)  # cheap
    manager = JobManager()
    spec = map_spec(fs, config, "src")

    def fail(ctx):
        raise PTMError("no map")
    failed = manager.submit(spec.key, spec.title, fail, lane=MAP)
    assert wait_until(lambda: failed.finished is not None, TIMEOUT)
    plan = map_plan(fs, config, "src", manager)
    assert plan.job is None and not plan.starts_itself  # cheap, but it failed here: the user decides
    done = manager.submit(spec.key, spec.title, lambda ctx: "map", lane=MAP)
    assert wait_until(lambda: done.finished is not None, TIMEOUT) and done.status == DONE
    assert map_plan(fs, config, "src", manager).job is done


def test_the_warm_ups_run_in_order_in_the_map_lane_and_leave_no_record():
    specs = warm_up_specs(JobManager(), source=None)
    assert [s.key for s in specs] == ["warm-up-default", "warm-up-umap"]
    assert all(s.lane == MAP and s.kind == "warm-up" and not s.record and not s.restore for s in specs)


def test_umaps_compile_waits_for_the_users_extraction_and_the_store_keeps_no_warm_up(monkeypatch, wait_until):
    calls = []
    monkeypatch.setattr(server, "clean_stale_extractions", lambda: calls.append("clean"))
    monkeypatch.setattr(server, "warm_up", lambda source: calls.append(("warm-up", source)))
    monkeypatch.setattr(server, "compile_umap", lambda: calls.append("compile"))
    manager = JobManager(store=RunStore())
    extraction_go = threading.Event()
    extraction = manager.submit("extract", "an extraction", lambda ctx: extraction_go.wait(TIMEOUT), lane=COMPUTE)
    assert wait_until(lambda: extraction.status == RUNNING, TIMEOUT)
    default, umap = start_background_work(manager, "the default source")
    assert calls[0] == "clean"
    assert wait_until(lambda: default.finished is not None, TIMEOUT) and calls[1] == ("warm-up", "the default source")
    time.sleep(0.7)  # longer than yield_to's poll
    assert umap.status == RUNNING and "compile" not in calls  # yielding to the extraction
    extraction_go.set()
    assert wait_until(lambda: umap.finished is not None, TIMEOUT) and calls[-1] == "compile"
    assert [run["key"] for run in manager.store.runs()] == ["extract"]


def test_explore_and_compare_specs_and_the_explore_job_to_reattach_to(tiny, wait_until):
    request = ExploreRequest(tiny.source(), ProbeConfig(seed=1))
    spec = explore_spec(request)
    assert (spec.key, spec.title, spec.kind, spec.lane, spec.restore) == (request.key(), request.title(), "explore",
                                                                          COMPUTE, True)
    compare = CompareRequest(tiny.source(), tiny.source(seed=1))
    assert (compare_spec(compare).key, compare_spec(compare).kind, compare_spec(compare).restore) == (
        compare.key(), "compare", True)

    manager = JobManager()
    assert active_explore(manager) is None
    go = threading.Event()
    running = manager.submit("an explore", "t", lambda ctx: go.wait(TIMEOUT), kind="explore")
    manager.submit("a map", "t", lambda ctx: go.wait(TIMEOUT), kind="map", lane=MAP)
    assert wait_until(lambda: running.status == RUNNING, TIMEOUT) and active_explore(manager) is running
    go.set()
    assert wait_until(lambda: running.finished is not None, TIMEOUT) and active_explore(manager) is None

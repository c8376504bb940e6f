"""Times shown next to a result are those of the run that computed it, also when it is read from a cache."""
from __future__ import annotations

import numpy as np
import pytest

from ptm_core.runs.artifacts import artifact_dir, load_npz
from ptm_core.base.configs import KNNConfig, ProbeConfig, Source
from ptm_core.base.errors import Cancelled
from ptm_core.flows.explore import ExploreRequest, run_explore
from ptm_core.features.extraction import extract
from ptm_core.runs.jobs import DONE, JobManager
from ptm_core.flows.lab import run_probes
from ptm_core.probes.linear import cached_linear_probe

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _done(manager: JobManager, key: str, work, wait_until):
    job = manager.submit(key, key, work)
    assert wait_until(lambda: job.finished is not None, 120.0) and job.status == DONE, job.error
    return job


def test_a_feature_cache_hit_keeps_the_original_compute_time_and_speed(tiny):
    first = extract(tiny.data(), tiny.backbone(), tiny.extraction())
    assert first.meta["from_cache"] is False and first.meta["compute_seconds"] > 0
    second = extract(tiny.data(), tiny.backbone(), tiny.extraction())
    assert second.meta["from_cache"] is True and second.meta["cache_hit"] is True
    assert second.meta["compute_seconds"] == first.meta["compute_seconds"]
    assert second.meta["images_per_s"] == first.meta["images_per_s"]
    assert second.meta["seconds"] != second.meta["compute_seconds"]  # this call's own (read) time stays apart


def test_a_resumed_extraction_counts_the_time_before_the_stop(tiny):
    checks = []
    with pytest.raises(Cancelled):
        extract(tiny.data(), tiny.backbone(), tiny.extraction(batch_size=20),
                cancelled=lambda: checks.append(1) or len(checks) >= 2)
    (partial,) = artifact_dir("features").glob("*.partial.npz")
    before = load_npz(partial)[1]["compute_seconds"]
    assert before > 0
    resumed = extract(tiny.data(), tiny.backbone(), tiny.extraction(batch_size=20))
    this_run = (60 - 20) / resumed.meta["images_per_s"]  # images_per_s is of the images this run computed
    assert resumed.meta["compute_seconds"] == pytest.approx(before + this_run, rel=1e-6)


def test_a_cached_probe_keeps_its_fit_time_and_says_it_came_from_the_cache():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(120, 6)).astype(np.float32), np.arange(120) % 3
    X[:, 0] += y * 3
    fitted = cached_linear_probe(X, y, "features-key", ProbeConfig())
    read = cached_linear_probe(X, y, "features-key", ProbeConfig())
    assert not fitted.from_cache and read.from_cache
    assert read.seconds == fitted.seconds and read.summary()["from_cache"] is True


def test_explore_and_lab_metrics_record_compute_seconds_not_the_cache_read(tiny, wait_until):
    manager = JobManager()
    request = ExploreRequest(tiny.source())
    first = _done(manager, "explore-1", lambda ctx: run_explore(request, ctx), wait_until).metrics
    again = _done(manager, "explore-2", lambda ctx: run_explore(request, ctx), wait_until).metrics
    assert first["from_cache"] is False and again["from_cache"] is True and again["features_from_cache"] is True
    assert again["probe_from_cache"] is True
    for name in ("feature_seconds", "probe_seconds", "images_per_s"):
        assert again[name] == first[name] and first[name] > 0

    source = Source(tiny.data(), tiny.backbone(), tiny.extraction())
    lab = _done(manager, "probes", lambda ctx: run_probes(source, KNNConfig(k=5), ctx), wait_until).metrics
    assert lab["from_cache"] is True and lab["feature_seconds"] == first["feature_seconds"]
    assert lab["method_seconds"] == pytest.approx(lab["feature_seconds"] + lab["probe_seconds"])
    assert lab["probe_seconds"] == first["probe_seconds"] and lab["probe_from_cache"] is True

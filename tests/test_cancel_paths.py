"""Cancel mid-run through a real JobManager job, on every engine path that reports progress.

The user's click is simulated inside a progress report (the n-th one), which then returns as
usual: cancellation must be observed by the work's own polls, and work that has something to
keep (an extraction's rows, a fine-tune's best weights) must keep it.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from ptm_core.runs.artifacts import artifact_dir, load_npz
from ptm_core.flows.compare import CompareRequest, run_compare
from ptm_core.base.configs import FinetuneConfig, KNNConfig, ProjectionConfig, Source
from ptm_core.features.extraction import extract
from ptm_core.finetune.finetuning import finetune
from ptm_core.runs.jobs import CANCELLED, DONE, JobContext, JobManager
from ptm_core.flows.lab import run_drift, run_finetune, run_label_efficiency_job, run_layers, run_pixels, \
    run_random_probe
from ptm_core.flows.explore import ExploreRequest, run_explore

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FT = FinetuneConfig(mode="full", epochs=3, batch_size=16, image_size=32)


class Clicker:
    """Cancels the job just before the n-th progress report whose message matches; counts the reports after it."""

    def __init__(self, n: int, pattern: str = ""):
        self.n, self.pattern = n, re.compile(pattern)
        self.seen, self.cancel_message, self.after = 0, None, 0

    def install(self, monkeypatch) -> "Clicker":
        original = JobContext.progress

        def progress(ctx, fraction, message="", step_end=1.0):
            if self.cancel_message is not None:
                self.after += 1
            elif self.pattern.search(message):
                self.seen += 1
                if self.seen >= self.n:  # the click lands while the work that this report announces ran
                    self.cancel_message = message
                    ctx._job.cancel()
            original(ctx, fraction, message, step_end)
        monkeypatch.setattr(JobContext, "progress", progress)
        return self


def _run(work, wait_until):
    job = JobManager().submit("cancel-test", "cancel test", work)
    assert wait_until(lambda: job.finished is not None, 120.0)
    return job


def _rows_done(message: str) -> int:
    return int(re.search(r"(\d+)/\d+ images", message).group(1))


def _partials() -> list[Path]:
    return sorted(artifact_dir("features").glob("*.partial.npz"))


@pytest.fixture()
def source(tiny):
    return Source(tiny.data(), tiny.backbone(), tiny.extraction(batch_size=8))


@pytest.fixture()
def source120(tiny):
    return Source(dataclasses.replace(tiny.data(), limit=120), tiny.backbone(), tiny.extraction(batch_size=8))


def test_explore_cancel_keeps_every_computed_row_and_a_resume_matches_an_uninterrupted_run(
        tiny, source, monkeypatch, wait_until, tmp_path):
    click = Clicker(3, r"images").install(monkeypatch)
    request = ExploreRequest(source)
    job = _run(lambda ctx: run_explore(request, ctx), wait_until)
    assert job.status == CANCELLED and click.after == 0  # stopped before another batch
    (partial,) = _partials()
    assert len(load_npz(partial)[0]["features"]) == _rows_done(click.cancel_message) == 24
    resumed = extract(source.dataset, source.backbone, source.extraction)
    assert resumed.meta["resumed_from"] == 24 and not _partials()
    monkeypatch.setenv("PTM_DATA_DIR", str(tmp_path / "fresh"))
    uninterrupted = extract(source.dataset, source.backbone, source.extraction)
    np.testing.assert_allclose(resumed.features, uninterrupted.features, rtol=1e-5, atol=1e-6)


def test_finetune_cancel_keeps_the_best_weights_tests_them_and_ends_done(source120, monkeypatch, wait_until):
    Clicker(6, r"^epoch").install(monkeypatch)  # 4 steps an epoch: cancel in epoch 2
    job = _run(lambda ctx: run_finetune(source120, FT, ctx), wait_until)
    assert job.status == DONE, job.error
    result = job.result
    assert result.stopped_early and len(result.train_curve) == 6  # training ended at the next step
    assert job.metrics["stopped_early"] is True and 0 <= job.metrics["test_accuracy"] <= 1
    assert job.metrics["test_accuracy"] == result.test_accuracy and result.best_val_accuracy is not None
    assert Path(job.artifacts["checkpoint"]).is_file() and "stopped early" in job.log[-1]


def test_lp_ft_cancelled_in_its_probe_stage_has_nothing_to_keep(source120, monkeypatch, wait_until):
    Clicker(1, r"linear probe").install(monkeypatch)
    job = _run(lambda ctx: run_finetune(source120, dataclasses.replace(FT, mode="lp-ft"), ctx), wait_until)
    assert job.status == CANCELLED and "checkpoint" not in job.artifacts
    assert not (artifact_dir("checkpoints").exists() and any(artifact_dir("checkpoints").iterdir()))


def test_random_probe_cancel_keeps_the_extracted_rows(source, monkeypatch, wait_until):
    click = Clicker(2, r"images").install(monkeypatch)
    job = _run(lambda ctx: run_random_probe(source, ctx), wait_until)
    assert job.status == CANCELLED and click.after == 0
    (partial,) = _partials()
    assert len(load_npz(partial)[0]["features"]) == _rows_done(click.cancel_message) == 16


def test_pixel_probe_cancel_stops_the_sweep_before_its_next_fit(source, monkeypatch, wait_until):
    click = Clicker(1, r"probe sweep").install(monkeypatch)
    job = _run(lambda ctx: run_pixels(source, ctx), wait_until)
    assert job.status == CANCELLED and click.after == 0


def test_layer_sweep_cancel_stops_at_the_next_batch(source, monkeypatch, wait_until):
    click = Clicker(2, r"every stage").install(monkeypatch)
    job = _run(lambda ctx: run_layers(source, ctx), wait_until)
    assert job.status == CANCELLED and click.after == 0
    assert not (artifact_dir("stages").exists() and any(artifact_dir("stages").glob("*.npz")))


def test_label_efficiency_cancel_stops_after_the_current_fit(source, monkeypatch, wait_until):
    click = Clicker(1, r"^k=").install(monkeypatch)
    job = _run(lambda ctx: run_label_efficiency_job(source, KNNConfig(k=5), False, FT, ctx), wait_until)
    assert job.status == CANCELLED and click.after == 0 and "rows" not in job.metrics


def test_compare_cancel_keeps_side_a_rows(source, tiny, monkeypatch, wait_until):
    click = Clicker(4, r"images").install(monkeypatch)
    request = CompareRequest(source, dataclasses.replace(source, backbone=tiny.backbone(seed=1)), k=5)
    job = _run(lambda ctx: run_compare(request, ctx), wait_until)
    assert job.status == CANCELLED and click.after == 0
    (partial,) = _partials()
    assert len(load_npz(partial)[0]["features"]) == 32


def test_drift_cancel_during_the_fine_tuned_features(source120, monkeypatch, wait_until):
    checkpoint = finetune(source120.dataset, source120.backbone, dataclasses.replace(FT, epochs=1), device="cpu").checkpoint
    click = Clicker(1, r"images").install(monkeypatch)  # "before" comes from the cache: this is "after"
    extract(source120.dataset, source120.backbone, dataclasses.replace(source120.extraction, image_size=32))
    job = _run(lambda ctx: run_drift(source120, checkpoint, 32, ProjectionConfig(method="pca"), ctx), wait_until)
    assert job.status == CANCELLED and click.after == 0 and click.cancel_message.startswith("64/120 images")

"""Progressive results: the images done so far are a seeded random sample, previewed by a probe and a PCA map."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ptm_core.features import preview as preview_module
from ptm_core.runs.artifacts import artifact_dir, load_npz, save_npz
from ptm_core.data import load_dataset
from ptm_core.base.errors import Cancelled
from ptm_core.flows.explore import ExploreRequest, run_explore
from ptm_core.features.extraction import extract
from ptm_core.runs.jobs import RUNNING, Job, JobContext
from ptm_core.features.preview import Preview, ProgressivePreview, extraction_order, summarise


def _every_batch(published: list) -> ProgressivePreview:
    return ProgressivePreview(published.append, first_s=0.0, every_s=0.0, budget=1e9)


def test_the_visiting_order_is_a_seeded_permutation():
    order = extraction_order(500)
    assert sorted(order) == list(range(500)) and not np.array_equal(order, np.arange(500))
    np.testing.assert_array_equal(order, extraction_order(500))


@pytest.mark.slow
def test_previews_grow_with_the_rows_done_and_the_features_keep_dataset_order(tiny, tmp_path, monkeypatch):
    data = tiny.data(limit=200)
    published: list[Preview] = []
    features = extract(data, tiny.backbone(), tiny.extraction(batch_size=32), preview=_every_batch(published))
    dataset = load_dataset(data)
    assert [p.n_done for p in published] == [32, 64, 96, 128, 160, 192]  # none once every row is done
    assert all(p.n_total == 200 and p.coords.shape == (p.n_done, 2) for p in published)
    order = extraction_order(200)
    for p in published:  # each preview's labels are those of the images visited so far
        np.testing.assert_array_equal(p.labels, dataset.labels[order[:p.n_done]])
    assert len(set(published[0].labels)) >= 8  # a random sample of the classes, not the first class's files
    assert published[-1].accuracy is not None and 0 <= published[-1].accuracy <= 1
    np.testing.assert_array_equal(features.labels, dataset.labels)
    assert features.ids == dataset.ids
    # The same features as one image at a time in dataset order (the visiting order changes nothing).
    monkeypatch.setenv("PTM_DATA_DIR", str(tmp_path / "fresh"))
    monkeypatch.setattr("ptm_core.features.extraction.extraction_order", lambda n: np.arange(n))
    plain = extract(data, tiny.backbone(), tiny.extraction(batch_size=1))
    np.testing.assert_allclose(features.features, plain.features, rtol=1e-4, atol=1e-5)


def test_a_checkpoint_in_another_order_is_not_resumed(tiny):
    calls = {"n": 0}

    def stop_after_one_batch() -> bool:
        calls["n"] += 1
        return calls["n"] > 1

    with pytest.raises(Cancelled):
        extract(tiny.data(), tiny.backbone(), tiny.extraction(batch_size=20), cancelled=stop_after_one_batch)
    (partial,) = artifact_dir("features").glob("*.partial.npz")
    arrays, meta = load_npz(partial)
    assert meta["order"] == "seeded permutation 0"
    del meta["order"]  # as written before the visiting order was shuffled: rows in file order
    save_npz(partial, meta=meta, **arrays)
    assert extract(tiny.data(), tiny.backbone(), tiny.extraction()).meta["resumed_from"] == 0


def test_no_probe_until_the_rarest_class_has_enough_images():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 16)).astype(np.float32)
    labels = np.array([0] * 30 + [1] * 26 + [2] * 4)
    early = summarise(features, labels, ["a", "b", "c"], 600)
    assert early.accuracy is None and early.coords.shape == (60, 2) and early.n_total == 600
    labels[-4:] = [2, 2, 1, 1]  # still 2 of class c
    assert summarise(features, labels, ["a", "b", "c"], 600).accuracy is None
    labels = np.repeat([0, 1, 2], 20)
    separable = features + np.eye(16, dtype=np.float32)[labels] * 8
    later = summarise(separable, labels, ["a", "b", "c"], 600)
    assert later.accuracy == 1.0 and later.n_test == 12 and later.best_C in (0.01, 0.1, 1.0)


def test_a_preview_of_many_rows_looks_at_a_seeded_sample():
    rng = np.random.default_rng(1)
    labels = np.arange(preview_module.MAX_ROWS + 500) % 4
    features = (rng.normal(size=(len(labels), 8)) + np.eye(8)[labels] * 5).astype(np.float32)
    big = summarise(features, labels, list("abcd"), 10_000)
    assert big.n_done == len(labels) and big.coords.shape == (preview_module.MAX_ROWS, 2)
    assert len(big.labels) == preview_module.MAX_ROWS and big.n_test == preview_module.MAX_ROWS // 5
    assert big.accuracy == 1.0


def test_previews_are_spaced_and_take_at_most_their_budget(monkeypatch):
    clock = {"t": 100.0}
    monkeypatch.setattr(preview_module.time, "perf_counter", lambda: clock["t"])
    cost = {"s": 0.01, "accuracy": 0.9}

    def fake_summarise(features, labels, class_names, n_total, seed=0, elapsed=0.0):
        clock["t"] += cost["s"]
        return Preview(len(features), n_total, np.zeros((len(features), 2)), labels, class_names, cost["accuracy"],
                       1, 1.0, elapsed, cost["s"])

    def wait_and_show(seconds: float) -> bool:
        """Whether a preview is due `seconds` from now, just before and just after."""
        clock["t"] += seconds - 0.001
        early = scheduler.due()
        clock["t"] += 0.002
        on_time = scheduler.due()
        scheduler(np.zeros((5, 3)), np.zeros(5, dtype=int), ["a"], 10)
        return not early and on_time

    monkeypatch.setattr(preview_module, "summarise", fake_summarise)
    shown = []
    scheduler = ProgressivePreview(shown.append)
    scheduler.start()
    assert wait_and_show(preview_module.FIRST_S)
    assert wait_and_show(preview_module.EVERY_S)  # every EVERY_S at most
    cost.update(s=0.5)
    assert wait_and_show(preview_module.EVERY_S)
    cost.update(s=4.0)
    assert wait_and_show(0.5 / preview_module.BUDGET)  # one that cost 0.5 s waits 0.5 / BUDGET before the next
    cost.update(s=0.01, accuracy=None)
    assert wait_and_show(preview_module.MAX_GAP_S)  # but never longer than MAX_GAP_S (4 / BUDGET would be 40 s)
    assert wait_and_show(preview_module.SOONER_S)  # no probe yet (too few of a class): the next look comes sooner
    assert len(shown) == 6


@pytest.mark.slow
def test_an_explore_job_publishes_previews_and_ends_with_the_full_result(tiny, monkeypatch):
    monkeypatch.setattr(preview_module, "FIRST_S", 0.0)
    monkeypatch.setattr(preview_module, "EVERY_S", 0.0)
    monkeypatch.setattr(preview_module, "BUDGET", 1e9)
    seen: list[Preview] = []

    class Watched(Job):
        def __setattr__(self, name, value):
            if name == "preview" and value is not None:
                seen.append(value)
            super().__setattr__(name, value)

    job = Watched(key="k", title="t", status=RUNNING)
    source = dataclasses.replace(tiny.source(), extraction=tiny.extraction(batch_size=40))
    result = run_explore(ExploreRequest(dataclasses.replace(source, dataset=tiny.data(limit=200))), JobContext(job))
    assert [p.n_done for p in seen] == [40, 80, 120, 160]
    assert job.preview is seen[-1] and result.features.features.shape[0] == 200
    probe = result.probe  # the accuracy shown is the probe's own predictions on its test rows
    assert probe.test_accuracy == np.mean(probe.predictions == result.features.labels[probe.test_indices])

"""The lab's methods as jobs (flows.lab.lab_spec): keys, titles, kinds and which runs a restarted server restores."""
import dataclasses

import pytest

from ptm_core.base.configs import (BackboneConfig, DatasetConfig, ExtractionConfig, FinetuneConfig, KNNConfig, Source,
                                   stable_hash)
from ptm_core.flows import LAB_METHODS, RESTORED_METHODS, LabRequest, lab_spec, source_runs
from ptm_core.runs.jobs import DONE, FAILED, JobManager
from ptm_core.runs.store import RunStore

SOURCE = Source(DatasetConfig("digits", limit=60), BackboneConfig("resnet10t", "random", 0),
                ExtractionConfig(image_size=32))


def _request(source: Source = SOURCE, **settings) -> LabRequest:
    return LabRequest(source, checkpoint="/tmp/best.safetensors", **settings)


def test_only_the_cached_methods_are_restored_a_fine_tune_never():
    restored = {kind for kind in LAB_METHODS if lab_spec(kind, _request()).restore}
    assert restored == set(RESTORED_METHODS) == {"probes", "pixels", "random"}
    assert not lab_spec("finetune", _request()).restore


def test_each_method_has_its_own_kind_title_and_key_and_the_same_settings_the_same_key():
    specs = {kind: lab_spec(kind, _request()) for kind in LAB_METHODS}
    assert {kind: spec.kind for kind, spec in specs.items()} == {kind: f"lab-{kind}" for kind in LAB_METHODS}
    assert len({spec.key for spec in specs.values()}) == len(LAB_METHODS)
    assert all(spec.title and spec.config["source_key"] == SOURCE.key() for spec in specs.values())
    assert all(lab_spec(kind, _request()).key == spec.key for kind, spec in specs.items())  # stable across calls
    with pytest.raises(ValueError, match="unknown lab method"):
        lab_spec("nonsense", _request())


def test_keys_are_those_of_earlier_versions_so_a_restart_finds_their_runs():
    knn, ft = KNNConfig(k=7), FinetuneConfig(epochs=2)
    assert lab_spec("probes", _request(knn=knn)).key == stable_hash(["lab", "probes", SOURCE.key(), [knn.key()]])
    assert lab_spec("finetune", _request(finetune=ft)).key == stable_hash(["lab", "finetune", SOURCE.key(), [ft.key()]])
    assert lab_spec("pixels", _request()).key == stable_hash(["lab", "pixels", SOURCE.key(), []])
    assert lab_spec("efficiency", _request()).key == stable_hash(["lab", "efficiency", SOURCE.key(), [False, None]])


def test_a_setting_changes_the_key_only_of_the_methods_that_use_it():
    base = {kind: lab_spec(kind, _request()).key for kind in LAB_METHODS}
    changed = {
        "knn": _request(knn=KNNConfig(k=5)),
        "finetune": _request(finetune=FinetuneConfig(epochs=2)),
        "checkpoint": dataclasses.replace(_request(), checkpoint="/tmp/other.safetensors"),
        "with_finetune": _request(with_finetune=True),
        "source": _request(source=dataclasses.replace(SOURCE, dataset=DatasetConfig("digits", limit=80))),
    }
    uses = {"knn": {"probes"}, "finetune": {"finetune"}, "checkpoint": {"drift"}, "with_finetune": {"efficiency"},
            "source": set(LAB_METHODS)}
    for setting, request in changed.items():
        moved = {kind for kind in LAB_METHODS if lab_spec(kind, request).key != base[kind]}
        assert moved == uses[setting], setting
    # Label efficiency keys the fine-tune settings only when it fine-tunes.
    other_ft = FinetuneConfig(epochs=2)
    assert lab_spec("efficiency", _request(finetune=other_ft)).key == base["efficiency"]
    assert (lab_spec("efficiency", _request(finetune=other_ft, with_finetune=True)).key
            != lab_spec("efficiency", _request(with_finetune=True)).key)


def test_titles_say_what_produced_the_number():
    ft = FinetuneConfig(mode="lp-ft", image_size=64)
    assert lab_spec("probes", _request()).title == f"probes · {SOURCE.describe()}"
    assert lab_spec("pixels", _request()).title == "raw pixels (32×32 grey) · digits"
    assert "random init" in lab_spec("random", _request()).title
    finetune = lab_spec("finetune", _request(finetune=ft)).title
    assert finetune.startswith("fine-tune lp-ft · ") and "64" in finetune
    assert lab_spec("drift", _request(finetune=ft)).title == f"feature drift · {finetune}"


def _stub(spec):
    return dataclasses.replace(spec, work=lambda ctx: "result")


def test_a_restarted_server_restores_the_probes_but_never_re_runs_a_fine_tune(tmp_path, wait_until):
    specs = {kind: _stub(lab_spec(kind, _request())) for kind in ("probes", "finetune")}
    first = JobManager(store=RunStore(tmp_path / "runs.sqlite"))
    jobs = [first.attach(spec, start=True) for spec in specs.values()]
    assert wait_until(lambda: all(job.status == DONE for job in jobs), 10)

    restarted = JobManager(store=RunStore(tmp_path / "runs.sqlite"))
    assert restarted.attach(specs["finetune"]) is None
    probes = restarted.attach(specs["probes"])
    assert probes is not None and wait_until(lambda: probes.status == DONE, 10)


def test_source_runs_are_the_done_runs_on_this_source(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    other = dataclasses.replace(SOURCE, dataset=DatasetConfig("digits", limit=80))
    rows = [("a", "lab-finetune", SOURCE, DONE), ("b", "lab-probes", SOURCE, DONE), ("c", "lab-finetune", other, DONE),
            ("d", "lab-finetune", SOURCE, FAILED)]
    for i, (run_id, kind, source, status) in enumerate(rows):
        store.save({"id": run_id, "key": run_id, "kind": kind, "title": run_id, "config": source.to_dict(),
                    "status": status, "progress": 1.0, "message": "", "error": None, "metrics": {}, "artifacts": {},
                    "log": [], "created": float(i), "started": float(i), "finished": float(i)})
    assert [r["id"] for r in source_runs(store, SOURCE)] == ["b", "a"]  # newest first
    assert [r["id"] for r in source_runs(store, SOURCE, kind="finetune")] == ["a"]
    assert source_runs(None, SOURCE) == []

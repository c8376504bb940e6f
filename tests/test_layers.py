"""Layer sweep: one probe per backbone stage, shallow to deep, with stage features cached on disk."""
from __future__ import annotations

import pytest
import timm

from ptm_core.base.stats import accuracy_interval, wilson_interval
from ptm_core.evals import layer_sweep as layers
from ptm_core.evals.layer_sweep import run_layer_sweep, stage_features


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_layer_sweep_one_entry_per_stage(tiny, monkeypatch, _isolated_data_dir):
    results = run_layer_sweep(tiny.data(), tiny.backbone(), tiny.extraction())
    info = timm.create_model(tiny.model).feature_info
    assert [r.index for r in results] == list(range(len(info)))
    assert [r.dim for r in results] == [entry["num_chs"] for entry in info]
    assert [r.name for r in results] == [entry["module"] for entry in info]
    assert all(0.0 <= r.test_accuracy <= 1.0 for r in results)
    assert set(results[0].to_dict()) == {"index", "name", "dim", "test_accuracy", "test_accuracy_ci95", "n_test", "best_C"}
    for r in results:  # every stage on the same 12 test images (60 digits, 20 %), with Wilson's interval on them
        assert r.n_test == 12 and r.to_dict()["n_test"] == 12
        assert r.test_accuracy_ci95 == wilson_interval(round(r.test_accuracy * 12), 12) == \
            accuracy_interval(r.test_accuracy, 12)
        assert r.to_dict()["test_accuracy_ci95"] == list(r.test_accuracy_ci95)
        assert r.test_accuracy_ci95[0] <= r.test_accuracy <= r.test_accuracy_ci95[1]
    assert list((_isolated_data_dir / "stages").glob("*.npz"))

    def no_extraction(*args, **kwargs):
        raise AssertionError("stage features should come from the cache")

    monkeypatch.setattr(layers, "extract_stages", no_extraction)
    cached = stage_features(tiny.data(), tiny.backbone(), tiny.extraction())
    assert [f.shape[1] for f in cached.features] == [r.dim for r in results]
    assert [r.test_accuracy for r in run_layer_sweep(tiny.data(), tiny.backbone(), tiny.extraction())] == \
        [r.test_accuracy for r in results]

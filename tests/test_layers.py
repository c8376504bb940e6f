"""Layer sweep: one probe per backbone stage, shallow to deep, with stage features cached on disk."""
from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

from ptm_core.base.stats import accuracy_interval, wilson_interval
from ptm_core.evals import layer_sweep as layers
from ptm_core.evals.layer_sweep import FINAL_NAME, LayerResult, inner_vs_final, run_layer_sweep, stage_features


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_layer_sweep_one_entry_per_stage(tiny, monkeypatch, _isolated_data_dir):
    results = run_layer_sweep(tiny.data(), tiny.backbone(), tiny.extraction())
    model = timm.create_model(tiny.model).eval()
    with torch.no_grad():  # every block (feature_info lists only those where the resolution drops), then the final
        _, blocks = model.forward_intermediates(torch.zeros(1, 3, 32, 32), extra_blocks=True)
    assert len(blocks) == len(model.blocks) + 1 > len(model.feature_info)
    assert [r.index for r in results] == list(range(len(blocks) + 1))
    assert [r.dim for r in results] == [b.shape[1] for b in blocks] + [model.num_features]
    assert [r.name for r in results] == ["stem", *(f"blocks.{i}" for i in range(len(model.blocks))), FINAL_NAME]
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


def test_the_last_layer_is_the_features_every_other_page_probes(tiny):
    """The sweep's final row must be the explorer's features (same pooling, same head), or its "final" would be
    another representation than the one whose accuracy the app reports."""
    from ptm_core.features.extraction import extract

    stages = stage_features(tiny.data(), tiny.backbone(), tiny.extraction())
    pooled = extract(tiny.data(), tiny.backbone(), tiny.extraction())
    assert stages.names[-1] == FINAL_NAME
    np.testing.assert_allclose(stages.features[-1], pooled.features, rtol=1e-3, atol=1e-4)


def _layer(index: int, name: str, predictions, truth) -> LayerResult:
    predictions, truth = np.asarray(predictions), np.asarray(truth)
    return LayerResult(index, name, 8, float(np.mean(predictions == truth)), 1.0, len(truth), predictions, truth)


def test_an_inner_layer_above_the_final_one_is_tested_not_just_ranked():
    truth = np.zeros(100, dtype=int)
    final = _layer(2, FINAL_NAME, np.r_[np.zeros(80), np.ones(20)], truth)
    clear = _layer(1, "blocks.4", np.r_[np.zeros(98), np.ones(2)], truth)  # 18 more right, none fewer
    noise = _layer(0, "blocks.1", np.r_[np.zeros(82), np.ones(18)], truth)  # 2 more right: not a difference
    verdict = inner_vs_final([noise, clear, final])
    assert verdict["inner"] == "blocks.4" and verdict["final"] == FINAL_NAME
    assert verdict["verdict"] == "a" and verdict["p_value"] < 1e-4 and verdict["a_only_right"] == 18
    tie = inner_vs_final([noise, final])
    assert tie["verdict"] == "tie" and tie["p_value"] > 0.4
    assert inner_vs_final([_layer(0, "blocks.0", np.ones(100), truth), final]) is None  # the final one leads

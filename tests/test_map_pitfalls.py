"""Map pitfalls (issue 24, item 3): the step's pretrained features re-drawn with few and many UMAP neighbours; the
probe's accuracy is the step's own, the maps move, and the card's sentences follow the numbers."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ptm_core.base.configs import DatasetConfig, ProbeConfig, ProjectionConfig
from ptm_core.features.extraction import extract
from ptm_core.maps.projection import compute_projection
from ptm_core.probes.linear import run_linear_probe
from ptm_core.flows import tour
from ptm_core.flows.map_pitfalls import (PitfallConfig, PitfallMap, PitfallResult, kept_share, pitfall_phases,
                                         pitfall_settings, run_map_pitfalls)
from ptm_core.runs.jobs import Job, JobContext
from test_tour import tiny_plan


def test_redrawn_maps_move_while_the_probe_is_the_steps_own(tiny):
    plan = tiny_plan(tiny)  # PCA step maps, like the page's small plan: the card still re-draws with UMAP
    job = Job("pitfalls", "pitfalls")
    result = run_map_pitfalls(plan, plan.shapes, PitfallConfig(), JobContext(job))
    assert len(job.log) == len(pitfall_phases(plan, plan.shapes))  # one stage per phase of its clock
    # Step 2's pretrained row as run_contrast computes it (tests/test_tour.py checks run_contrast against these):
    # its probe on the pretrained features, and its map of them.
    source = plan.source(plan.shapes)
    fs = extract(source.dataset, source.backbone, source.extraction)
    probe = run_linear_probe(fs.features, fs.labels, ProbeConfig(seed=plan.shapes.seed))
    # What did not move: one probe for all three maps, the very number (and test images) step 2 shows.
    assert (result.accuracy, result.n_test) == (probe.test_accuracy, probe.n_test)
    assert result.produced_by == tour.describe_kind(plan, plan.shapes, "pretrained")
    assert [m.setting for m in result.maps] == ["step", "few", "many"]
    step_map = compute_projection(fs.features, dataclasses.replace(plan.projection, seed=plan.shapes.seed))
    np.testing.assert_array_equal(result.map("step").coords, step_map)  # the step's own map
    assert result.map("step").config.method == "pca" and result.map("step").n_neighbors is None
    few, many = result.map("few"), result.map("many")
    assert (few.n_neighbors, many.n_neighbors) == (5, 95)  # 100 capped at n - 1 for 96 images
    assert few.config.method == many.config.method == "umap"
    assert not np.allclose(few.coords, many.coords)  # what moved: the picture
    for m in result.maps:
        f = m.faithfulness
        assert 0.0 <= f["trustworthiness"] <= 1.0
        assert 0.0 <= f["knn_accuracy_map"] <= 1.0 and 0.0 <= f["knn_accuracy_features"] <= 1.0
        assert f["knn_accuracy_features"] == result.maps[0].faithfulness["knn_accuracy_features"]  # same features
        assert 0.0 <= m.kept_from_step <= 1.0
    assert result.map("step").kept_from_step == 1.0
    assert result.kept_share == pytest.approx(kept_share(few.coords, many.coords, 10))
    assert 0.0 <= result.kept_share < 1.0
    assert result.picture_changed == (result.kept_share < 0.9)


def test_settings_keep_the_steps_map_and_cap_neighbours_by_the_images():
    plan = tour.TourPlan()  # a UMAP step map: the re-drawn ones differ from it only in their neighbours
    data = DatasetConfig("shapes:n=50,classes=2", seed=3)
    settings = dict(pitfall_settings(plan, data, 50))
    assert settings["step"] == dataclasses.replace(plan.projection, seed=3)
    assert settings["few"] == dataclasses.replace(plan.projection, n_neighbors=5, seed=0)
    assert settings["many"].n_neighbors == 49
    assert dict(pitfall_settings(plan, data, 1000))["many"].n_neighbors == 100


def test_kept_share_counts_shared_map_neighbours():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 2)).astype(np.float32)
    assert kept_share(a, a * 5 + 3, 10) == 1.0  # scaled and shifted: the same picture
    assert kept_share(a, rng.normal(size=(200, 2)).astype(np.float32), 10) < 0.2  # unrelated: ~k / n by chance
    b = a.copy()
    b[:, 0] *= 4  # stretched along one axis: some neighbours change, not all
    assert 0.2 < kept_share(a, b, 10) < 1.0


def _result(kept: float, trust=(0.91, 0.84), step_method: str = "umap", accuracy: float = 0.9) -> PitfallResult:
    def one(setting, config, t):
        f = {"trustworthiness": t, "knn_accuracy_map": 0.8, "knn_accuracy_features": 0.85, "knn_n_test": 50, "k": 10}
        return PitfallMap(setting, config, np.zeros((4, 2)), f, 1.0, 1.0)
    maps = [one("step", ProjectionConfig(method=step_method), 0.9), one("few", ProjectionConfig(n_neighbors=5),
            trust[0]), one("many", ProjectionConfig(n_neighbors=100), trust[1])]
    return PitfallResult(DatasetConfig("shapes"), np.zeros(4, int), ["a"], maps, 10, kept, 0.9, accuracy, 200,
                         "tf_efficientnet_lite0", 1280)


def test_the_cards_sentences_follow_the_numbers():
    from pages.ui.pitfall_views import pitfall_sentences

    changed = pitfall_sentences(_result(0.43), 0.9, 200, 2)
    assert changed[0].startswith("**What did not move:** the linear probe's accuracy, 90.0% (95 % CI")
    assert "200 test images), is step 2's number under all three maps" in changed[0]
    assert changed[1].startswith("**What moved:** the picture. Of an image's 10 nearest neighbours in the 5-neighbour "
                                 "map, on average only 4.3 are still among its 10 nearest in the 100-neighbour map")
    assert "trustworthiness goes from 0.91 to 0.84 (-0.07)" in changed[1]
    assert "the size of a cluster and the distance between two clusters mean little" in changed[2]
    assert len(changed) == 3  # a UMAP step map needs no PCA note
    same = pitfall_sentences(_result(0.95, trust=(0.9, 0.9)), 0.9, 200, 3)
    assert same[1].startswith("**Here the setting barely moved the picture:** of an image's 10 nearest neighbours in "
                              "the 5-neighbour map, on average 9.5 are still among")
    assert "What moved" not in " ".join(same)
    pca = pitfall_sentences(_result(0.5, step_method="pca"), 0.9, 200, 2)
    assert pca[-1] == "Step 2's map is PCA, a linear projection with no neighbours setting; the two re-drawn maps are UMAP."
    # A probe read back that is not the step's: said, never "did not move".
    stale = pitfall_sentences(_result(0.5, accuracy=0.8), 0.9, 200, 2)
    assert "did not move" not in stale[0] and "its cache changed since the step ran" in stale[0]

"""Near-duplicates, features propose and pixels confirm (ptm_core.evals.duplicates): on real MNIST digits a 1 px-shifted
copy is confirmed by its thumbnails while the most alike other image of its class is not, whatever their features
say; without pixels the feature rule alone runs and the report says so."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ptm_core.base.configs import DatasetConfig
from ptm_core.base.quality import QualityConfig
from ptm_core.data.registry import load_dataset
from ptm_core.data.types import Dataset
from ptm_core.evals.duplicates import near_duplicates, shifted_correlation, thumbnails
from ptm_core.evals.quality import quality
from ptm_core.features.featureset import FeatureSet


@pytest.fixture(scope="module")
def threes() -> tuple[Dataset, np.ndarray]:
    """A digit 3 of MNIST, the same 3 shifted down by 1 px, and the other 3 of MNIST-5k whose thumbnail correlates
    best with the first (the hardest different image of its class), as a dataset of three."""
    mnist = load_dataset(DatasetConfig("mnist5k"))
    rows = np.flatnonzero(mnist.labels == 3)
    thumbs, _ = thumbnails(mnist, mnist.ids, rows, 32)
    alike = shifted_correlation(np.repeat(thumbs[:1], len(rows) - 1, axis=0), thumbs[1:], 2)
    original = np.asarray(mnist.items[rows[0]])
    other = np.asarray(mnist.items[rows[1 + int(np.argmax(alike))]])
    images = [original, np.roll(original, 1, axis=0), other]
    return Dataset("threes", images, [3, 3, 3], mnist.class_names, "threes", ids=["orig", "shifted", "other"]), alike


def _graph(cosine: float) -> tuple[np.ndarray, np.ndarray]:
    """The k-NN graph (k = 2) of the three images, every pair at the same feature `cosine`."""
    return np.array([[1, 2], [0, 2], [0, 1]]), np.full((3, 2), cosine)


def test_a_shifted_copy_is_confirmed_by_pixels_and_a_like_image_is_not(threes):
    dataset, alike = threes
    assert alike.max() > 0.85  # the other 3 is a close call, not a strawman
    config = QualityConfig()
    indices, similarity = _graph(0.93)  # above candidate_similarity, under duplicate_similarity: pixels decide
    pairs = near_duplicates(indices, similarity, dataset.ids, config, dataset)
    assert [pair["ids"] for pair in pairs] == [["orig", "shifted"]]
    assert pairs[0]["found_by"] == "features + pixels"
    assert pairs[0]["correlation"] >= config.pixel_correlation
    # Without pixels the same graph lists nothing: 0.93 is too low for features alone.
    assert near_duplicates(indices, similarity, dataset.ids, config, None) == []


def test_very_close_features_need_no_pixels(threes):
    dataset, _ = threes
    indices, similarity = _graph(0.98)  # at duplicate_similarity: near-duplicates whatever the thumbnails say
    pairs = near_duplicates(indices, similarity, dataset.ids, QualityConfig(), dataset)
    assert len(pairs) == 3 and {pair["found_by"] for pair in pairs} == {"features"}
    assert all(pair["correlation"] is not None for pair in pairs)  # compared all the same, and said


def test_shifted_correlation_finds_the_shift_and_only_within_reach():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 32, 32)).astype(np.float32)
    b = np.roll(a, (2, -1), axis=(1, 2))
    assert shifted_correlation(a, b, 2) == pytest.approx(np.ones(4), abs=1e-5)
    assert (shifted_correlation(a, b, 1) < 0.5).all()  # a 2 px shift is out of reach of 1 px
    flat = np.zeros((1, 32, 32), dtype=np.float32)
    assert shifted_correlation(flat, a[:1], 2)[0] == 0.0  # a constant image correlates with nothing


def _blobs_naming(dataset_spec: str) -> FeatureSet:
    rng = np.random.default_rng(0)
    labels = np.arange(60) % 2
    features = rng.normal(size=(60, 32)).astype(np.float32)  # random directions: cosine near 0 between rows
    features[59] = features[0] * 1.01  # a copy by features
    return FeatureSet(features, labels, ["a", "b"], [f"img{i}" for i in range(60)], "blobs", {"dataset": dataset_spec})


def test_features_whose_dataset_does_not_load_fall_back_to_features_and_say_so():
    report = quality(_blobs_naming("no-such-dataset"))
    assert report.duplicate_method == "features" and report.to_dict()["duplicate_method"] == "features"
    assert any("features alone" in note and "no-such-dataset" in note for note in report.notes)
    assert [pair["ids"] for pair in report.near_duplicates] == [["img0", "img59"]]
    assert report.near_duplicates[0]["found_by"] == "features"


def test_pixels_can_be_declined():
    report = quality(_blobs_naming("digits"), pixels=False)
    assert report.duplicate_method == "features"
    assert any("pixels were not asked for" in note for note in report.notes)


def test_cli_says_when_near_duplicates_rest_on_features_alone(tmp_path, capsys):
    from ptm_core.cli.commands import main

    path = tmp_path / "named.npz"
    _blobs_naming("no-such-dataset").to_npz(path)
    assert main(["quality", "--features", str(path)]) == 0
    out = capsys.readouterr().out
    assert "near-duplicate pairs (cosine >= 0.97)" in out and "note: Near-duplicates by features alone" in out
    assert main(["quality", "--features", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["duplicate_method"] == "features"

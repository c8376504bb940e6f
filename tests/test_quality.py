"""Data quality (ptm_core.evals.quality, flows.quality, `python -m ptm_core quality`): planted problems in small
synthetic features are found, ranked, and said the way the CLI and the page read them."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ptm_core.base.errors import PTMError
from ptm_core.base.quality import QualityConfig
from ptm_core.evals.quality import duplicated_in_train, quality
from ptm_core.features.featureset import FeatureSet


def _blobs(n_per_class: int = 60, n_classes: int = 3, dim: int = 16, seed: int = 0) -> FeatureSet:
    """Well-separated Gaussian classes (means 10 apart, unit noise): every label is right until one is flipped."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    means = rng.normal(scale=10.0, size=(n_classes, dim))
    features = (means[labels] + rng.normal(size=(len(labels), dim))).astype(np.float32)
    return FeatureSet(features, labels, [f"class{c}" for c in range(n_classes)],
                      [f"img{i}" for i in range(len(labels))], "blobs")


def test_flipped_labels_on_separated_blobs_are_the_label_issues():
    fs = _blobs()
    flipped = [3, 70, 150]
    fs.labels[flipped] = [1, 2, 0]  # class0 -> class1, class1 -> class2, class2 -> class0
    report = quality(fs, QualityConfig(duplicate_similarity=0.9999))
    assert sorted(issue["row"] for issue in report.label_issues) == flipped
    by_row = {issue["row"]: issue for issue in report.label_issues}
    assert (by_row[3]["given"], by_row[3]["suggested"]) == ("class1", "class0")
    assert by_row[3]["id"] == "img3"
    scores = [issue["score"] for issue in report.label_issues]
    assert scores == sorted(scores)  # worst (lowest label quality) first
    assert all(0 <= s < 0.5 for s in scores)


def test_label_issues_fork_no_processes(monkeypatch):
    """The report runs on a server's worker thread, where a forked pool can hang (evals/quality.label_issues): cleanlab
    is held to one process however many cores it sees."""
    import multiprocessing
    import sys

    def no_pool(*args, **kwargs):
        raise AssertionError("cleanlab forked a multiprocessing pool")

    monkeypatch.setattr(multiprocessing, "cpu_count", lambda: 8)  # what cleanlab sizes its pool by without psutil
    monkeypatch.setattr(multiprocessing, "Pool", no_pool)
    monkeypatch.setitem(sys.modules, "psutil", None)
    fs = _blobs()
    fs.labels[[3, 70]] = [1, 2]
    assert sorted(issue["row"] for issue in quality(fs, QualityConfig(), pixels=False).label_issues) == [3, 70]


def test_planted_duplicates_are_found_once_each_and_ranked():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(100, 32)).astype(np.float32)  # random directions: cosine near 0 between them
    features[90] = features[10] * 1.5  # an exact copy up to scale: cosine 1
    features[91] = features[20] + 0.05 * rng.normal(size=32)  # a near-copy
    labels = np.arange(100) % 2
    fs = FeatureSet(features, labels, ["a", "b"], [f"img{i}" for i in range(100)], "dups")
    report = quality(fs, QualityConfig(duplicate_similarity=0.98), test_indices=np.array([90, 5, 6]))
    assert [pair["rows"] for pair in report.near_duplicates] == [[10, 90], [20, 91]]
    assert report.near_duplicates[0]["similarity"] == pytest.approx(1.0, abs=1e-6)
    assert report.near_duplicates[0]["ids"] == ["img10", "img90"]
    # These features name no dataset: no pixels to compare, so both pairs are found by features alone, and said so.
    assert [pair["found_by"] for pair in report.near_duplicates] == ["features", "features"]
    assert report.near_duplicates[0]["correlation"] is None and report.duplicate_method == "features"
    assert any("features alone" in note for note in report.notes)
    # 90 is in test and 10 in train: a leak; 20 and 91 are both in train: no leak.
    assert report.leaks == [{"test_row": 90, "train_row": 10, "test_id": "img90", "train_id": "img10",
                             "similarity": pytest.approx(1.0, abs=1e-6), "correlation": None,
                             "found_by": "features"}]
    assert duplicated_in_train(features, np.array([90, 5, 6]), 0.98) == 1
    assert duplicated_in_train(features, np.array([5, 6]), 0.98) == 0


def test_a_far_point_is_the_top_outlier():
    fs = _blobs(n_per_class=50, n_classes=2)
    fs.features[7] = -fs.features[7] * 3 + 40  # nowhere near either class
    report = quality(fs)
    assert report.outliers[0]["row"] == 7
    assert len(report.outliers) == 1  # 1 % of 100
    assert report.outliers[0]["score"] > 0


def test_the_default_split_is_the_probes_and_leaks_use_it():
    from ptm_core.base.configs import ProbeConfig
    from ptm_core.probes.linear import split_indices

    rng = np.random.default_rng(2)
    labels = np.arange(120) % 3
    fs = FeatureSet(rng.normal(size=(120, 32)).astype(np.float32), labels, ["a", "b", "c"],
                    [f"img{i}" for i in range(120)], "random")  # random directions: no pair near another
    _, test = split_indices(fs.labels, ProbeConfig().test_size, 0)
    train = np.setdiff1d(np.arange(len(fs.labels)), test)
    fs.features[test[0]] = fs.features[train[0]]  # a copy of a train image in test
    report = quality(fs)
    assert [(leak["test_row"], leak["train_row"]) for leak in report.leaks] == [(int(test[0]), int(train[0]))]


def test_small_classes_reduce_the_folds_and_say_so():
    fs = _blobs(n_per_class=30)
    keep = np.r_[0:30, 30:60, 60:63]  # the third class has 3 images
    fs = FeatureSet(fs.features[keep], fs.labels[keep], fs.class_names, [fs.ids[i] for i in keep], "small")
    report = quality(fs)
    assert report.folds == 3
    assert "3 folds instead of 5" in report.notes[0]


@pytest.mark.parametrize("change, message", [
    (lambda f, l: (f[:1], l[:1]), "at least 2 images"),
    (lambda f, l: (f, np.zeros_like(l)), "single class"),
    (lambda f, l: (np.where(np.arange(len(f))[:, None] == 3, np.nan, f), l), "NaN"),
    (lambda f, l: (f, np.r_[l[:-1], 3]), "class 3 has 1"),
])
def test_bad_input_is_one_line(change, message):
    fs = _blobs(n_per_class=20)
    features, labels = change(fs.features, fs.labels)
    bad = FeatureSet(features.astype(np.float32), labels, [*fs.class_names, "class3"], fs.ids[:len(labels)], "bad")
    with pytest.raises(PTMError, match=message):
        quality(bad)


def test_bad_settings_are_refused():
    with pytest.raises(PTMError, match="folds"):
        quality(_blobs(), QualityConfig(folds=1))
    with pytest.raises(PTMError, match="duplicate similarity"):
        quality(_blobs(), QualityConfig(duplicate_similarity=1.5))


def test_report_dict_has_the_cli_schema():
    report = quality(_blobs()).to_dict()
    assert {"label_issues", "near_duplicates", "outliers", "leaks", "n", "config"} <= set(report)
    json.dumps(report)  # plain types only


def test_cli_prints_the_four_lists_as_json(tmp_path, capsys):
    from ptm_core.cli.commands import main

    fs = _blobs()
    fs.labels[5] = 2
    path = tmp_path / "blobs.npz"
    fs.to_npz(path)
    # C = 1: sharp probabilities on these 16 dims; confident learning counts an image only above its class's mean
    # self-confidence, which the default C's softer probabilities do not reach for a single flip.
    assert main(["quality", "--features", str(path), "--json", "--threshold", "0.9999", "--C", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"label_issues", "near_duplicates", "outliers", "leaks"}
    assert out["label_issues"][0]["id"] == "img5"
    assert (out["label_issues"][0]["given"], out["label_issues"][0]["suggested"]) == ("class2", "class0")
    assert out["near_duplicates"] == [] and out["leaks"] == []
    assert out["outliers"] and {"id", "score"} <= set(out["outliers"][0])


def test_cli_refuses_a_single_class_in_one_line(tmp_path, capsys):
    from ptm_core.cli.commands import main

    fs = _blobs()
    fs.labels[:] = 0
    path = tmp_path / "one.npz"
    fs.to_npz(path)
    assert main(["quality", "--features", str(path), "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "single class" in err and "\n" not in err


def test_probe_json_counts_test_images_with_a_near_duplicate_in_train(tmp_path, capsys):
    from ptm_core.base.configs import ProbeConfig
    from ptm_core.cli.commands import main
    from ptm_core.probes.linear import split_indices

    rng = np.random.default_rng(3)
    labels = np.arange(150) % 3
    features = (rng.normal(size=(150, 32)) + 4 * np.eye(32)[labels]).astype(np.float32)
    _, test = split_indices(labels, ProbeConfig().test_size, 0)
    train = np.setdiff1d(np.arange(150), test)
    features[test[:2]] = features[train[:2]]  # two test images copied from train
    FeatureSet(features, labels, ["a", "b", "c"], [f"img{i}" for i in range(150)], "x").to_npz(tmp_path / "f.npz")
    assert main(["probe", "--features", str(tmp_path / "f.npz"), "--json", "--solver", "sklearn"]) == 0
    assert json.loads(capsys.readouterr().out)["test_near_duplicates"] == 2

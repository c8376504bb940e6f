"""Label efficiency: exactly k labelled images per class, seeded, on the fixed test split."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ptm_core.base.configs import DatasetConfig, FinetuneConfig, ProbeConfig
from ptm_core.data import load_dataset
from ptm_core.base.errors import Cancelled
from ptm_core.base.stats import accuracy_interval, wilson_interval
from ptm_core.evals.label_efficiency import (DEFAULT_SEEDS, FINETUNE_DRAWS, EfficiencyRow, finetune_runner,
                                             run_label_efficiency, sample_per_class)
from ptm_core.probes.linear import split_indices
from arrays import gaussian_blobs


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def blobs():
    return gaussian_blobs(300, centres=3, dim=8, spread=2.0, shift=10.0)


@pytest.mark.parametrize("k", [1, 2, 5, 10, 25])
def test_sampler_takes_exactly_k_per_class_from_train(k):
    labels = np.repeat(np.arange(4), 50)
    train, test = split_indices(labels, 0.2, 0)
    sample = sample_per_class(labels, train, k, seed=0)
    assert np.bincount(labels[sample.indices]).tolist() == [k] * 4
    assert np.isin(sample.indices, train).all() and not np.isin(sample.indices, test).any()
    assert sample.short_classes == {}
    again = sample_per_class(labels, train, k, seed=0)
    np.testing.assert_array_equal(again.indices, sample.indices)
    if k < 40:
        assert not np.array_equal(sample_per_class(labels, train, k, seed=1).indices, sample.indices)


def test_sampler_reports_classes_with_fewer_than_k_and_all():
    labels = np.array([0] * 30 + [1] * 4)
    train = np.arange(len(labels))
    sample = sample_per_class(labels, train, 10, seed=0)
    assert np.bincount(labels[sample.indices]).tolist() == [10, 4]
    assert sample.short_classes == {1: 4}
    np.testing.assert_array_equal(sample_per_class(labels, train, None, seed=5).indices, train)


def test_run_label_efficiency_rows(blobs):
    X, y = blobs
    calls = []

    def fake_finetune(indices, seed):
        calls.append((len(indices), seed))
        return 0.5

    rows = run_label_efficiency(X, y, ks=(1, 10, None), seeds=(0, 1, 2), probe_config=ProbeConfig(),
                                finetune=fake_finetune)
    assert [(r.k, r.method) for r in rows] == [(k, m) for k in (1, 10, None) for m in ("logreg", "knn", "finetune")]
    by = {(r.k, r.method): r for r in rows}
    assert by[(1, "logreg")].n_labelled == [3, 3, 3] and len(by[(1, "knn")].accuracies) == 3
    assert by[(None, "logreg")].n_labelled == [240] and by[(None, "knn")].std == 0.0
    assert by[(None, "logreg")].mean > 0.9 and by[(1, "knn")].mean > 0.9  # blobs apart: one label per class will do
    assert by[(10, "finetune")].accuracies == [0.5] * 3 and by[(10, "finetune")].std == 0.0  # the runner's numbers
    assert calls[:3] == [(3, 0), (3, 1), (3, 2)]
    row = by[(10, "knn")].to_dict()
    assert set(row) >= {"k", "budget", "all_labels", "method", "mean", "std", "accuracies", "ci95", "n_test", "draws"}
    assert row["ci95"] == list(by[(10, "knn")].ci95) and row["n_test"] == 60 and row["draws"] == 3
    assert (row["k"], row["budget"], row["all_labels"]) == (10, "10", False)
    everything = by[(None, "knn")].to_dict()  # all 240 training labels over 3 classes: 80 per class
    assert (everything["k"], everything["budget"], everything["all_labels"]) == (80, "all", True)


def test_rows_convert_to_arrow_with_one_type_per_column(blobs):
    """Mixed int/'all' k made Streamlit's Arrow conversion fail on every rerun."""
    import pandas as pd
    import pyarrow as pa

    X, y = blobs
    table = [r.to_dict() for r in run_label_efficiency(X[:150], y[:150], ks=(1, 2, None), seeds=(0, 1))]
    converted = pa.Table.from_pandas(pd.DataFrame(table))
    assert converted.schema.field("k").type == pa.int64() and pa.types.is_string(converted.schema.field("budget").type) or pa.types.is_large_string(converted.schema.field("budget").type)
    assert converted.column("budget").to_pylist() == ["1", "1", "2", "2", "all", "all"]
    assert converted.column("k").to_pylist()[-1] == 40  # 120 training images, 3 classes


def t_interval(values) -> tuple[float, float]:
    """mean ± t_{0.975, n-1} · s / sqrt(n), written out (s with ddof 1)."""
    from scipy.stats import t

    half = t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values))
    return float(np.mean(values)) - half, float(np.mean(values)) + half


def test_default_draws_are_enough_for_an_interval_and_fine_tuning_takes_fewer():
    import inspect

    assert len(DEFAULT_SEEDS) >= 5 and len(set(DEFAULT_SEEDS)) == len(DEFAULT_SEEDS)
    assert inspect.signature(run_label_efficiency).parameters["seeds"].default == DEFAULT_SEEDS
    assert 2 <= FINETUNE_DRAWS < len(DEFAULT_SEEDS)


def test_interval_over_draws_is_students_t_and_holds_the_mean(blobs):
    X, y = gaussian_blobs(300, centres=3, dim=8, spread=6.0, shift=4.0)  # overlapping: draws disagree
    seen = []
    rows = run_label_efficiency(X, y, ks=(2, None), finetune=lambda indices, seed: seen.append(seed) or (40 + seed) / 100)
    by = {(r.k, r.method): r for r in rows}
    for method in ("logreg", "knn"):
        row = by[(2, method)]
        assert row.draws == len(DEFAULT_SEEDS) and row.interval_kind == "t" and row.std > 0
        low, high = row.ci95
        assert (low, high) == pytest.approx(t_interval(row.accuracies), abs=1e-12)
        assert low < row.mean < high
    # Fine-tuning: the first FINETUNE_DRAWS seeds only, each its own draw of labelled images.
    assert seen == [0, 1, 2, 0] and by[(2, "finetune")].accuracies == [0.4, 0.41, 0.42]
    assert by[(2, "finetune")].n_labelled == [6, 6, 6] and by[(2, "finetune")].ci95 == pytest.approx(
        t_interval([0.4, 0.41, 0.42]))


def test_interval_shrinks_with_more_draws():
    accuracies = [0.62, 0.70, 0.66, 0.74, 0.68] * 8  # the same spread however many draws
    widths = []
    for n in (5, 10, 40):
        low, high = EfficiencyRow(5, "logreg", accuracies[:n], [50] * n, {}, 200).ci95
        assert low < float(np.mean(accuracies[:n])) < high
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    X, y = gaussian_blobs(300, centres=3, dim=8, spread=6.0, shift=4.0)
    few, many = (run_label_efficiency(X, y, ks=(1,), seeds=tuple(range(n)))[0] for n in (5, 20))
    assert many.ci95[1] - many.ci95[0] < few.ci95[1] - few.ci95[0]


def test_interval_stays_within_0_and_1():
    low, high = EfficiencyRow(5, "knn", [1.0, 0.98, 1.0, 1.0, 0.99], [50] * 5, {}, 200).ci95
    assert high == 1.0 and 0.97 < low < 0.99


def test_all_labels_is_one_run_with_wilsons_interval_on_the_test_split(blobs):
    X, y = blobs
    rows = run_label_efficiency(X, y, ks=(None,))
    _, test = split_indices(y, 0.2, 0)
    for row in rows:
        assert row.draws == 1 and row.interval_kind == "wilson" and row.n_test == len(test) == 60
        correct = int(round(row.accuracies[0] * row.n_test))
        assert row.ci95 == wilson_interval(correct, 60) == accuracy_interval(row.mean, 60)
        assert row.to_dict()["interval"] == "wilson" and row.to_dict()["ci95"] == list(row.ci95)


def _colour_folder(root, per_class: int = 20):
    """An easy set: three classes of noisy red, green and blue 16x16 images."""
    rng = np.random.default_rng(0)
    for name, rgb in {"red": (220, 30, 30), "green": (30, 220, 30), "blue": (30, 30, 220)}.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(rgb) + rng.normal(0, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_finetune_runner_trains_on_exactly_k_per_class_without_validation(tiny, tmp_path, monkeypatch):
    from ptm_core.finetune import finetuning

    real_finetune, runs = finetuning.finetune, []

    def recording_finetune(*args, **kwargs):
        runs.append((kwargs, real_finetune(*args, **kwargs)))
        return runs[-1][1]
    monkeypatch.setattr(finetuning, "finetune", recording_finetune)
    data = DatasetConfig(f"folder:{_colour_folder(tmp_path / 'colours')}")
    run = finetune_runner(data, tiny.backbone(), FinetuneConfig(mode="lp-ft", epochs=2, batch_size=8, image_size=32,
                                                                augment=False), device="cpu")
    labels = load_dataset(data).labels
    train, test = split_indices(labels, 0.2, 0)
    sample = sample_per_class(labels, train, 8, seed=1)
    accuracy = run(sample.indices, 1)
    [(kwargs, result)] = runs
    np.testing.assert_array_equal(kwargs["train_subset"], sample.indices)
    assert np.bincount(labels[kwargs["train_subset"]]).tolist() == [8, 8, 8]
    assert (result.n_train, result.n_val, result.n_test) == (24, 0, len(test)) and result.config["seed"] == 1
    np.testing.assert_array_equal(np.sort(result.test_indices), np.sort(test))
    assert accuracy == result.test_accuracy and accuracy > 2 / 3  # chance is 1/3


def test_a_fine_tune_stopped_by_cancel_is_not_recorded_as_a_result(blobs):
    X, y = blobs
    stop = []

    def fake_finetune(indices, seed):
        stop.append(True)  # the user cancels while this fine-tune runs: it stops early and still returns
        return 0.1

    with pytest.raises(Cancelled):
        run_label_efficiency(X, y, ks=(None,), seeds=(0,), finetune=fake_finetune, cancelled=lambda: bool(stop))

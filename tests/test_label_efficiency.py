"""Label efficiency: exactly k labelled images per class, seeded, on the fixed test split."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ptm_core.base.configs import DatasetConfig, FinetuneConfig, ProbeConfig
from ptm_core.data import load_dataset
from ptm_core.base.errors import Cancelled
from ptm_core.evals.label_efficiency import finetune_runner, run_label_efficiency, sample_per_class
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
    assert set(row) >= {"k", "budget", "all_labels", "method", "mean", "std", "accuracies"}
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

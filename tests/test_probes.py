"""Linear probes: seeded stratified splits, accuracy on separable data, equivalence with sklearn."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ptm_core.base.configs import ProbeConfig
from ptm_core.base.errors import PTMError
from ptm_core.probes.linear import LinearProbe, run_linear_probe, split_indices
from arrays import gaussian_blobs


@pytest.fixture(scope="module")
def blobs():
    return gaussian_blobs(300, centres=3, dim=8, spread=1.0)


def test_split_indices_is_stratified_seeded_and_disjoint():
    labels = np.array([0] * 40 + [1] * 40 + [2] * 20)
    train, test = split_indices(labels, 0.25, seed=0)
    assert len(test) == 25 and len(train) == 75
    assert np.intersect1d(train, test).size == 0
    assert np.array_equal(np.union1d(train, test), np.arange(100))
    assert np.bincount(labels[test]).tolist() == [10, 10, 5]
    assert np.bincount(labels[train]).tolist() == [30, 30, 15]
    again_train, again_test = split_indices(labels, 0.25, seed=0)
    assert np.array_equal(train, again_train) and np.array_equal(test, again_test)
    _, other_test = split_indices(labels, 0.25, seed=1)
    assert not np.array_equal(test, other_test)
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)


def test_linear_probe_on_separable_blobs(blobs):
    X, y = blobs
    config = ProbeConfig(seed=0)
    result = run_linear_probe(X, y, config)
    assert result.test_accuracy > 0.95
    # Every C scores 100 % on validation: the one-SE rule keeps the smallest, and that sits on the grid's lower
    # edge, so the sweep goes on down to its limit (the curve is the grid's Cs and those, sorted).
    assert result.best_C == 1e-6 and result.extended_Cs == (1e-4, 1e-5, 1e-6)
    assert [c for c, _ in result.val_curve] == sorted(config.Cs + result.extended_Cs)
    assert all(0.0 <= acc <= 1.0 for _, acc in result.val_curve)
    assert result.n_train + result.n_test == len(y) and result.n_test == 60
    assert len(result.predictions) == len(result.test_indices) == result.n_test
    assert result.test_accuracy == pytest.approx(np.mean(result.predictions == y[result.test_indices]))
    summary = result.summary()
    assert {"test_accuracy", "best_C", "n_train", "n_test", "seconds", "val_curve"} <= set(summary)
    # the same seed gives the same result
    again = run_linear_probe(X, y, config)
    assert again.test_accuracy == result.test_accuracy and again.best_C == result.best_C
    np.testing.assert_array_equal(again.predictions, result.predictions)


def test_best_C_is_one_of_the_swept_Cs(blobs):
    X, y = blobs
    Cs = (0.003, 0.3, 30.0)
    result = run_linear_probe(X, y, ProbeConfig(Cs=Cs, seed=2))
    swept = [c for c, _ in result.val_curve]
    assert result.best_C in swept and set(Cs) <= set(swept)
    # The argmax within the grid alone: the rule before the one-SE rule and the extension.
    probe = LinearProbe(Cs=Cs, random_state=0, c_rule="best", c_limits=None).fit(X, y)
    assert probe.val_Cs_ == list(Cs) and probe.best_C_ in Cs
    assert probe.best_C_ == Cs[int(np.argmax(probe.val_scores_))]
    assert list(probe.classes_) == [0, 1, 2]


def test_single_C_matches_a_plain_sklearn_pipeline():
    rng = np.random.default_rng(0)
    X, y = gaussian_blobs(240, centres=4, dim=6, spread=4.0, seed=1)
    X = X + rng.normal(scale=2.0, size=X.shape)  # overlapping classes, so predictions are not trivial
    C = 0.05
    config = ProbeConfig(Cs=(C,), seed=3)
    result = run_linear_probe(X, y, config)
    assert result.best_C == C
    train, test = split_indices(y, config.test_size, config.seed)
    assert np.array_equal(test, result.test_indices)
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=config.max_iter)).fit(X[train], y[train])
    np.testing.assert_array_equal(result.predictions, reference.predict(X[test]))
    assert result.test_accuracy == pytest.approx(reference.score(X[test], y[test]))


def test_single_class_is_a_ptm_error():
    X = np.random.default_rng(0).normal(size=(50, 4))
    with pytest.raises(PTMError, match="single class"):
        run_linear_probe(X, np.zeros(50, dtype=np.int64))


@pytest.mark.parametrize("labels", [
    [0, 1, 0, 1],  # a 20% test split of 4 images holds 1 image for 2 classes
    [0] * 20 + [1],  # a class with a single image cannot be split
    [0, 0, 1, 1, 2, 2, 3, 3, 4, 4],
])
def test_too_few_images_is_a_ptm_error(labels):
    labels = np.array(labels)
    X = np.random.default_rng(0).normal(size=(len(labels), 4))
    with pytest.raises(PTMError, match="Too few images"):
        run_linear_probe(X, labels)


def test_too_few_images_for_the_validation_split_is_a_ptm_error():
    # 10 per class survives the train/test split but leaves too little for train/validation
    labels = np.repeat(np.arange(5), 4)
    X = np.random.default_rng(0).normal(size=(len(labels), 4))
    with pytest.raises(PTMError):
        run_linear_probe(X, labels, ProbeConfig(test_size=0.25, val_size=0.1))

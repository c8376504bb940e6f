"""k-NN probe against a brute-force reference, the shared results helpers, and the baselines."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ptm_core.base.configs import KNNConfig, ProbeConfig
from ptm_core.base.errors import PTMError
from ptm_core.probes.knn import KNNProbe, run_knn_probe
from ptm_core.probes.linear import (confident_mistakes, confusion, per_class_accuracy, run_linear_probe,
                             split_indices)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def brute_force_knn(train: np.ndarray, y: np.ndarray, test: np.ndarray, k: int, temperature: float, n_classes: int):
    """DINO's weighted k-NN written out in numpy."""
    bank = train / np.linalg.norm(train, axis=1, keepdims=True)
    queries = test / np.linalg.norm(test, axis=1, keepdims=True)
    sims = queries.astype(np.float64) @ bank.T.astype(np.float64)
    top = np.argsort(-sims, axis=1)[:, :k]
    weights = np.exp(np.take_along_axis(sims, top, axis=1) / temperature)
    votes = np.zeros((len(test), n_classes))
    for row in range(len(test)):
        np.add.at(votes[row], y[top[row]], weights[row])
    return votes.argmax(axis=1), votes / votes.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("k, temperature", [(20, 0.07), (5, 0.5), (1, 0.07)])
def test_knn_matches_brute_force_on_random_data(k, temperature):
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(300, 16)).astype(np.float32), rng.normal(size=(80, 16)).astype(np.float32)
    y = rng.integers(0, 5, size=300)
    expected, expected_proba = brute_force_knn(train, y, test, k, temperature, 5)
    probe = KNNProbe(k=k, temperature=temperature).fit(train, y)
    np.testing.assert_array_equal(probe.predict(test), expected)
    np.testing.assert_allclose(probe.predict_proba(test), expected_proba, atol=1e-4)
    assert np.allclose(np.linalg.norm(probe.bank_, axis=1), 1.0, atol=1e-5)


def test_knn_on_blobs_and_k_capped_at_bank_size():
    X, y = make_blobs(n_samples=300, centers=4, n_features=8, cluster_std=1.0, random_state=0)
    X = X + 20.0  # away from the origin, so directions (cosine) still separate the blobs
    result = run_knn_probe(X.astype(np.float32), y, KNNConfig())
    assert result.test_accuracy > 0.9
    assert (result.k, result.temperature, result.n_train, result.n_test) == (20, 0.07, 240, 60)
    assert result.probabilities.shape == (60, 4)
    assert set(result.summary()) >= {"test_accuracy", "k", "temperature", "n_train", "n_test", "seconds"}
    small = KNNProbe(k=50).fit(X[:10], y[:10])
    assert small.n_neighbors_ == 10 and small.predict(X[10:20]).shape == (10,)
    with pytest.raises(PTMError):
        KNNProbe(k=0).fit(X, y)


def test_every_method_uses_the_same_split():
    X, y = make_blobs(n_samples=200, centers=3, n_features=6, random_state=1)
    train, test = split_indices(y, 0.2, seed=3)
    linear = run_linear_probe(X, y, ProbeConfig(seed=3))
    knn = run_knn_probe(X, y, KNNConfig(seed=3))
    np.testing.assert_array_equal(linear.test_indices, test)
    np.testing.assert_array_equal(knn.test_indices, test)
    assert linear.n_train == knn.n_train == len(train)


@pytest.mark.parametrize("solver, atol", [("sklearn", 1e-6), ("torch", 1e-2)])
def test_probe_protocol_equals_a_direct_sklearn_fit(solver, atol):
    # sklearn's solver is the protocol itself; the batched torch heads reach the same optimum to a tolerance
    X, y = make_blobs(n_samples=240, centers=4, n_features=10, cluster_std=4.0, random_state=2)
    result = run_linear_probe(X, y, ProbeConfig(seed=0, solver=solver))
    train, test = split_indices(y, 0.2, seed=0)
    direct = make_pipeline(StandardScaler(), LogisticRegression(C=result.best_C, max_iter=1000)).fit(X[train], y[train])
    assert np.mean(result.predictions == direct.predict(X[test])) >= (1.0 if solver == "sklearn" else 0.97)
    np.testing.assert_allclose(result.probabilities, direct.predict_proba(X[test]), atol=atol)


def test_per_class_accuracy_confusion_and_confident_mistakes():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    proba = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1],
                      [0.6, 0.3, 0.1], [0.0, 0.05, 0.95], [0.3, 0.3, 0.4]])
    y_pred = proba.argmax(axis=1)
    matrix = confusion(y_true, y_pred, 4)  # a class never seen still gets its row and column
    assert matrix.shape == (4, 4) and matrix.sum() == 6
    assert matrix[0].tolist() == [1, 1, 0, 0] and matrix[1].tolist() == [1, 1, 0, 0]
    accuracy = per_class_accuracy(y_true, y_pred, 4)
    np.testing.assert_allclose(accuracy[:3], [0.5, 0.5, 1.0])
    assert np.isnan(accuracy[3])
    # wrong: position 1 (p=0.7) and position 3 (p=0.6); most confident first
    assert confident_mistakes(y_true, proba).tolist() == [1, 3]
    assert confident_mistakes(y_true, proba, top=1).tolist() == [1]
    assert confident_mistakes(y_true, proba, classes=np.array([5, 6, 7])).tolist() == [4, 0, 2, 1, 3, 5]


def test_pixel_baseline_uses_the_probe_split():
    from ptm_core.evals.baselines import pixel_features, run_pixel_baseline
    from ptm_core.base.configs import DatasetConfig
    from ptm_core.data import load_dataset

    data = DatasetConfig("digits", 120)
    dataset = load_dataset(data)
    grey = pixel_features(dataset, size=16)
    assert grey.shape == (120, 256) and grey.dtype == np.float32 and 0.0 <= grey.min() and grey.max() <= 1.0
    assert pixel_features(dataset.subset(np.arange(3)), size=8, grey=False).shape == (3, 192)
    result = run_pixel_baseline(data, ProbeConfig(seed=0), size=16)
    np.testing.assert_array_equal(result.test_indices, split_indices(dataset.labels, 0.2, 0)[1])
    assert result.test_accuracy > 0.5  # digits are nearly linearly separable in pixel space


def test_random_weights_baseline_is_extraction_with_random_weights(tiny):
    from ptm_core.evals.baselines import run_random_weights_baseline
    from ptm_core.base.configs import BackboneConfig
    from ptm_core.features.extraction import extract

    pretrained_like = BackboneConfig(tiny.model, "bundled", seed=3)  # weights are replaced by 'random'
    result = run_random_weights_baseline(tiny.data(), pretrained_like, tiny.extraction())
    features = extract(tiny.data(), BackboneConfig(tiny.model, "random", seed=3), tiny.extraction())
    assert features.meta["cache_hit"] is True  # the baseline extracted exactly these features
    direct = run_linear_probe(features.features, features.labels, ProbeConfig())
    assert result.test_accuracy == direct.test_accuracy
    np.testing.assert_array_equal(result.predictions, direct.predictions)

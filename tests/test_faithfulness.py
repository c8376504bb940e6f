"""Map faithfulness on data where the answer is known."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA

from ptm_core.base.errors import PTMError
from ptm_core.maps.faithfulness import map_faithfulness, pca_variance


def labelled_blobs(n: int = 300, dim: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 4
    centres = rng.normal(scale=6.0, size=(4, dim)) + 10.0  # away from the origin so cosine sees the blobs
    return (centres[labels] + rng.normal(size=(n, dim))).astype(np.float32), labels


def test_pca_of_2d_data_is_perfectly_trustworthy_and_random_map_is_not():
    x = np.random.default_rng(0).normal(size=(400, 2)) * [3.0, 1.0]
    exact = PCA(n_components=2).fit_transform(x)
    good = map_faithfulness(x, exact, None, metric="euclidean")
    bad = map_faithfulness(x, np.random.default_rng(1).normal(size=(400, 2)), None, metric="euclidean")
    assert good["trustworthiness"] > 0.999
    assert bad["trustworthiness"] < 0.7
    assert good["pca_variance_2d"] == pytest.approx(1.0)
    assert good["knn_accuracy_map"] is None and good["knn_accuracy_features"] is None


def test_knn_accuracy_in_features_vs_map():
    x, y = labelled_blobs()
    pca_map = PCA(n_components=2).fit_transform(x)
    good = map_faithfulness(x, pca_map, y)
    assert good["knn_accuracy_features"] > 0.95 and good["knn_accuracy_map"] > 0.9
    scrambled = map_faithfulness(x, np.random.default_rng(2).normal(size=(300, 2)), y)
    assert scrambled["knn_accuracy_map"] < 0.5
    assert "less well than the features" in scrambled["summary"] and "McNemar p < 0.001" in scrambled["summary"]
    # The words follow McNemar's test on the kNN test images, not the gap: a map as good as its features is a tie.
    flat, flat_labels = labelled_blobs(dim=2)
    same = map_faithfulness(flat, flat, flat_labels, metric="euclidean")  # the map is the features themselves
    assert same["knn_n_test"] == 75 and same["knn_p_value"] >= 0.05
    assert "as well as the features do, as far as its test images can tell" in same["summary"]


def test_summary_is_one_plain_sentence():
    x, y = labelled_blobs()
    result = map_faithfulness(x, PCA(n_components=2).fit_transform(x), y)
    summary = result["summary"]
    assert summary.startswith("The map ") and summary.endswith(".") and summary.count(". ") == 0
    assert "trustworthiness" in summary and "principal components" in summary


def test_trust_sample_is_capped_and_seeded():
    x, y = labelled_blobs(500)
    coords = PCA(n_components=2).fit_transform(x)
    first = map_faithfulness(x, coords, y, sample=100, seed=3)
    assert first["n_trust_sample"] == 100 and first["n_points"] == 500
    assert map_faithfulness(x, coords, y, sample=100, seed=3) == first


def test_pca_variance_of_planar_data():
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(200, 2)) @ rng.normal(size=(2, 10))
    two, three = pca_variance(plane)
    assert two == pytest.approx(1.0) and three == pytest.approx(1.0)


def test_mismatched_inputs_raise():
    x, y = labelled_blobs()
    with pytest.raises(PTMError, match="same images"):
        map_faithfulness(x, x[:10, :2], y)
    with pytest.raises(PTMError, match="same images"):
        map_faithfulness(x, x[:, :2], y[:10])

"""Nearest neighbours and neighbour agreement against brute-force cosine similarity."""
from __future__ import annotations

import numpy as np
import pytest

from ptm_core.base.errors import PTMError
from ptm_core.maps.neighbours import nearest_neighbours, neighbour_agreement


def features(n: int = 120, dim: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def brute_cosine(x: np.ndarray) -> np.ndarray:
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    return unit @ unit.T


@pytest.mark.parametrize("index", [0, 57, 119])
def test_nearest_neighbours_match_brute_force(index):
    x = features()
    sims = brute_cosine(x)[index]
    sims[index] = -np.inf
    expected = np.argsort(-sims)[:8]
    indices, similarities = nearest_neighbours(x, index, k=8)
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(similarities, sims[expected], atol=1e-5)
    assert index not in indices and np.all(np.diff(similarities) <= 1e-6)


def test_exact_duplicate_is_a_neighbour_but_the_query_is_not():
    x = features()
    x[5] = x[9]
    indices, similarities = nearest_neighbours(x, 9, k=3)
    assert 9 not in indices and indices[0] == 5 and similarities[0] == pytest.approx(1.0, abs=1e-5)


def test_agreement_is_one_for_identical_spaces_and_low_for_random():
    x = features()
    np.testing.assert_allclose(neighbour_agreement(x, x.copy(), k=10), 1.0)
    # Scaling each image changes no cosine similarity, so neighbourhoods must agree fully.
    np.testing.assert_allclose(neighbour_agreement(x, x * 3.0, k=10), 1.0)
    random = neighbour_agreement(x, features(seed=1), k=10)
    assert random.shape == (120,) and random.mean() < 0.2 and random.min() >= 0.0


def test_agreement_matches_brute_force_jaccard():
    a, b = features(60), features(60, seed=2)
    k = 5

    def knn(x):
        sims = brute_cosine(x)
        np.fill_diagonal(sims, -np.inf)
        return [set(np.argsort(-row)[:k]) for row in sims]

    expected = [len(p & q) / len(p | q) for p, q in zip(knn(a), knn(b))]
    np.testing.assert_allclose(neighbour_agreement(a, b, k=k), expected, atol=1e-6)


def test_bad_inputs_raise():
    x = features(10)
    with pytest.raises(PTMError, match="only 9 other"):
        nearest_neighbours(x, 0, k=10)
    with pytest.raises(PTMError, match="out of range"):
        nearest_neighbours(x, 10)
    with pytest.raises(PTMError, match="different images"):
        neighbour_agreement(x, features(11))

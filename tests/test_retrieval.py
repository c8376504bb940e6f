"""Retrieval metrics (precision@1, R-precision, MAP@R; Musgrave et al. 2020) against a textbook loop, known values,
and bad input."""
import numpy as np
import pytest

from ptm_core.base.errors import PTMError
from ptm_core.probes.retrieval import retrieval_metrics


def _textbook(features, labels, max_r=None):
    """One query at a time: rank every other image by cosine similarity, then the paper's formulas as written."""
    x = features / np.linalg.norm(features, axis=1, keepdims=True)
    similarity = x @ x.T
    p1, rp, ap = [], [], []
    for q in range(len(x)):
        others = [i for i in np.argsort(-similarity[q], kind="stable") if i != q]
        r = sum(1 for i in range(len(x)) if i != q and labels[i] == labels[q])
        if max_r is not None:
            r = min(r, max_r)
        if r == 0:
            continue
        right = [labels[i] == labels[q] for i in others[:r]]
        p1.append(float(labels[others[0]] == labels[q]))
        rp.append(sum(right) / r)
        ap.append(sum(sum(right[:i + 1]) / (i + 1) for i in range(r) if right[i]) / r)
    return np.mean(p1), np.mean(rp), np.mean(ap), len(p1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_the_textbook_loop_on_tiny_data(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, 60)
    features = rng.normal(size=(60, 8)) + labels[:, None] * 0.6  # some structure, far from perfect
    result = retrieval_metrics(features, labels, chunk_cells=7 * 60)  # several chunks
    p1, rp, ap, n = _textbook(features, labels)
    assert result.n_queries == n == 60
    assert result.precision_at_1 == pytest.approx(p1)
    assert result.r_precision == pytest.approx(rp)
    assert result.map_at_r == pytest.approx(ap)
    assert 0 < result.map_at_r < 1


def test_the_cap_on_r_matches_the_textbook_with_the_same_cap():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 50)
    features = rng.normal(size=(50, 5)) + labels[:, None]
    result = retrieval_metrics(features, labels, max_r=5)
    p1, rp, ap, _ = _textbook(features, labels, max_r=5)
    assert result.max_r == 5
    assert (result.precision_at_1, result.r_precision, result.map_at_r) == pytest.approx((p1, rp, ap))


def test_perfectly_separated_classes_score_one():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    features = np.eye(3)[labels] * 10 + rng.normal(scale=0.01, size=(60, 3))
    result = retrieval_metrics(features, labels)
    assert (result.precision_at_1, result.r_precision, result.map_at_r) == (1.0, 1.0, 1.0)
    assert result.max_r == 19


def test_order_within_r_moves_map_at_r_but_not_r_precision():
    # Query 0 (class 0, R = 2): its neighbours by cosine, nearest first, are rows 3 (class 1), 1, 2: one right among
    # the first R -> R-precision 1/2; MAP@R = (0 + 1/2) / 2 = 1/4.
    features = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.99, 0.14]])
    labels = np.array([0, 0, 0, 1])
    result = retrieval_metrics(features, labels)
    p1, rp, ap, n = _textbook(features, labels)
    assert n == 3 and result.n_excluded == 1  # the lone class-1 image has nothing to retrieve
    assert (result.precision_at_1, result.r_precision, result.map_at_r) == pytest.approx((p1, rp, ap))
    assert result.map_at_r < result.r_precision


def test_an_exact_duplicate_does_not_count_the_query_as_its_own_neighbour():
    features = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.1, 1.0]])
    labels = np.array([0, 1, 1, 0])
    result = retrieval_metrics(features, labels)
    # Rows 0 and 1 are identical: each finds the other first, of the other class.
    assert result.precision_at_1 == 0.0


def test_intervals_hold_the_values():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 90)
    result = retrieval_metrics(rng.normal(size=(90, 6)) + labels[:, None], labels)
    for value, (low, high) in ((result.precision_at_1, result.precision_at_1_ci95),
                               (result.r_precision, result.r_precision_ci95), (result.map_at_r, result.map_at_r_ci95)):
        assert low <= value <= high and low < high
    assert set(result.summary()) >= {"precision_at_1", "r_precision", "map_at_r"}


@pytest.mark.parametrize("features, labels, words", [
    (np.ones((1, 3)), np.array([0]), "at least 2"),
    (np.array([[1.0, np.nan], [1.0, 2.0]]), np.array([0, 0]), "NaN"),
    (np.eye(3), np.array([0, 1, 2]), "at least 2 images"),
    (np.eye(3), np.array([0, 1]), "one label per"),
])
def test_bad_input_is_one_line(features, labels, words):
    with pytest.raises(PTMError, match=words):
        retrieval_metrics(features, labels)


def test_the_knn_probe_carries_them_in_its_summary():
    from ptm_core.base.configs import KNNConfig
    from ptm_core.probes.knn import run_knn_probe

    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(3), 30)
    features = rng.normal(size=(90, 6)) + labels[:, None] * 2
    summary = run_knn_probe(features, labels, KNNConfig(k=5), retrieval=True).summary()
    expected = retrieval_metrics(features, labels)
    assert (summary["precision_at_1"], summary["r_precision"], summary["map_at_r"]) == pytest.approx(
        (expected.precision_at_1, expected.r_precision, expected.map_at_r))
    assert "map_at_r" not in run_knn_probe(features, labels, KNNConfig(k=5)).summary()  # off unless asked

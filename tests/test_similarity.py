"""CKA (ptm_core.evals.similarity): invariances, the textbook HSIC value, the minibatch estimator, id matching,
bad input, and the CLI."""
import json

import numpy as np
import pytest

from ptm_core.base.errors import PTMError
from ptm_core.evals.similarity import cka, layer_cka_matrix, match_ids, matched_cka, rbf_gram
from ptm_core.features.featureset import FeatureSet


def _textbook_cka(k: np.ndarray, l: np.ndarray) -> float:
    """HSIC(K, L) = tr(K H L H) / (n - 1)², CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)), written out."""
    n = len(k)
    h = np.eye(n) - np.ones((n, n)) / n

    def hsic(a, b):
        return np.trace(a @ h @ b @ h) / (n - 1) ** 2

    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


def _set(features, ids, labels=None) -> FeatureSet:
    labels = np.zeros(len(features), dtype=np.int64) if labels is None else labels
    return FeatureSet(np.asarray(features, dtype=np.float32), labels, ["a"], list(ids), "test")


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=(200, 24))


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_a_rotated_scaled_shifted_copy_has_cka_one(x, kernel):
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(24, 24)))
    copy = 7.5 * x @ q + 3.0
    assert cka(x, copy, kernel).cka == pytest.approx(1.0, abs=1e-4)


def test_linear_cka_equals_the_textbook_centred_hsic_value_for_unrelated_sets(x):
    y = np.random.default_rng(2).normal(size=(200, 40))
    value = cka(x, y).cka
    assert value == pytest.approx(_textbook_cka(x @ x.T, y @ y.T), abs=1e-10)
    assert 0.0 < value < 0.5  # unrelated: far from 1 (and not 0 with 24 and 40 dims on 200 rows)


def test_rbf_cka_equals_the_textbook_value_with_the_median_bandwidth(x):
    y = np.random.default_rng(3).normal(size=(200, 8))
    dist = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    sigma = 0.8 * np.median(dist[np.triu_indices(200, 1)])
    assert np.allclose(rbf_gram(x), np.exp(-dist**2 / (2 * sigma**2)))
    assert cka(x, y, "rbf").cka == pytest.approx(_textbook_cka(rbf_gram(x), rbf_gram(y)), abs=1e-10)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_the_minibatch_estimate_agrees_with_the_exact_one(kernel):
    rng = np.random.default_rng(4)
    a = rng.normal(size=(3000, 32))
    b = a[:, :16] @ rng.normal(size=(16, 20)) + rng.normal(size=(3000, 20))
    exact = cka(a, b, kernel)
    estimate = cka(a, b, kernel, exact_max_rows=1000, batch_size=500)
    assert exact.method == "exact" and (estimate.method, estimate.batch_size, estimate.n_batches) == ("minibatch", 500, 6)
    assert "minibatch, batch 500, 6 batches" in estimate.to_dict()["estimator"]
    assert 0.3 < exact.cka < 0.8 and estimate.cka == pytest.approx(exact.cka, abs=0.02)


def test_the_layer_matrix_matches_pairwise_cka_exact_and_minibatch():
    rng = np.random.default_rng(5)
    layers = [rng.normal(size=(600, d)) for d in (4, 16, 64)]
    layers.append(layers[1] @ rng.normal(size=(16, 32)))
    names = ["s0", "s1", "s2", "s3"]
    exact = layer_cka_matrix(layers, names)
    pairwise = np.array([[cka(a, b).cka for b in layers] for a in layers])
    assert exact.method == "exact" and np.allclose(exact.values, pairwise, atol=1e-10)
    batched = layer_cka_matrix(layers, names, budget_bytes=0, batch_size=300)
    assert (batched.method, batched.n_batches) == ("minibatch", 2)
    assert np.allclose(np.diag(batched.values), 1.0) and np.allclose(batched.values, pairwise, atol=0.05)


def test_sets_are_matched_by_id_and_the_count_is_said(x):
    ids = [f"img{i}" for i in range(200)]
    a = _set(x, ids)
    order = np.random.default_rng(6).permutation(200)[:150]  # B: 150 of A's images, shuffled, plus 20 others
    extra = np.random.default_rng(7).normal(size=(20, 24))
    b = _set(np.vstack([x[order] * 2 + 1, extra]), [ids[i] for i in order] + [f"other{i}" for i in range(20)])
    result = matched_cka(a, b)
    assert (result.n, result.n_a, result.n_b) == (150, 200, 170)
    assert result.cka == pytest.approx(1.0, abs=1e-4)  # matched rows are the same images despite the order
    assert "150 of 200 (A) and 170 (B) rows matched by id" in result.to_dict()["matched"]


def test_under_ten_matched_rows_is_refused_with_the_count(x):
    a = _set(x[:50], [f"a{i}" for i in range(50)])
    b = _set(x[:50], [f"a{i}" for i in range(9)] + [f"b{i}" for i in range(41)])
    with pytest.raises(PTMError, match=r"Only 9 of 50 \(A\) and 50 \(B\) rows share an id"):
        matched_cka(a, b)
    with pytest.raises(PTMError, match="repeats an id"):
        match_ids(["x"] * 20, ["x"] * 20)


@pytest.mark.parametrize("bad, message", [(np.full((30, 4), np.nan), "NaN or infinite"),
                                         (np.full((30, 4), np.inf), "NaN or infinite"),
                                         (np.ones((1, 4)), "single row"), (np.ones(30), "2-D")])
def test_bad_features_are_refused_in_one_line(x, bad, message):
    with pytest.raises(PTMError, match=message):
        cka(bad, x[:len(np.atleast_2d(bad))])


def test_mismatched_rows_unknown_kernel_and_constant_rbf_are_refused(x):
    with pytest.raises(PTMError, match="200 rows and B 100"):
        cka(x, x[:100])
    with pytest.raises(PTMError, match="Unknown CKA kernel"):
        cka(x, x, "cosine")
    with pytest.raises(PTMError, match="same point"):
        cka(np.ones((20, 3)), x[:20], "rbf")


def test_cli_prints_linear_cka_and_refuses_bad_files(tmp_path, x, monkeypatch, capsys):
    """In process (`python -m ptm_core` calls this main): a subprocess would spend its time importing torch."""
    from ptm_core.cli.commands import main

    ids = [f"img{i}" for i in range(200)]
    _set(x, ids).to_npz(tmp_path / "a.npz")
    _set(x * 3 - 1, ids).to_npz(tmp_path / "b.npz")
    _set(x[:5], ids[:5]).to_npz(tmp_path / "small.npz")
    monkeypatch.setenv("PTM_ALLOWED_ROOTS", str(tmp_path))
    a, b, small = (str(tmp_path / f"{name}.npz") for name in ("a", "b", "small"))

    assert main(["similarity", "--a", a, "--b", b, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["linear_cka"] == pytest.approx(1.0, abs=1e-4) and shown["n"] == 200 and shown["method"] == "exact"
    assert main(["similarity", "--a", a, "--b", b, "--kernel", "rbf", "--json"]) == 0
    rbf = json.loads(capsys.readouterr().out)
    assert rbf["rbf_cka"] == pytest.approx(1.0, abs=1e-4) and rbf["linear_cka"] == pytest.approx(1.0, abs=1e-4)
    assert main(["similarity", "--a", a, "--b", small, "--json"]) == 2
    refused = capsys.readouterr()
    assert refused.out == "" and refused.err.strip().splitlines() == [
        "error: Only 5 of 200 (A) and 5 (B) rows share an id; CKA needs at least 10 images in both sets."]

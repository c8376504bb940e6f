"""The batched torch C sweep against sklearn, the reference it replaces: same optimum, same choices."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ptm_core.base.configs import PROBE_CS, ProbeConfig
from ptm_core.base.errors import Cancelled, PTMError
from ptm_core.probes.sweep import fit_heads
from ptm_core.probes.linear import LinearProbe, run_linear_probe
from arrays import gaussian_blobs


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), y.astype(np.int64)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_each_head_reaches_sklearns_optimum(n_classes):
    X, y = make_classification(n_samples=300, n_features=12, n_informative=6, n_classes=n_classes,
                               n_clusters_per_class=1, random_state=0)
    X = StandardScaler().fit_transform(X)
    Cs = (0.01, 1.0)
    heads = fit_heads(X, y, n_classes, Cs, max_iter=1000)
    for h, C in enumerate(Cs):
        ref = LogisticRegression(C=C, max_iter=1000, tol=1e-8).fit(X, y)
        logits = X @ heads.weight[h] + heads.bias[h]
        if n_classes == 2:  # sklearn's single score is the logit difference
            np.testing.assert_allclose(logits[:, 1] - logits[:, 0], ref.decision_function(X), atol=2e-2)
        else:  # softmax logits are defined up to a per-row constant
            ours = logits - logits.mean(1, keepdims=True)
            theirs = ref.decision_function(X)
            np.testing.assert_allclose(ours, theirs - theirs.mean(1, keepdims=True), atol=2e-2)


@pytest.mark.slow
def test_torch_sweep_chooses_like_sklearn_on_digits(digits):
    X, y = digits
    config = ProbeConfig(seed=0)
    torch_result = run_linear_probe(X, y, config)
    sklearn_result = run_linear_probe(X, y, ProbeConfig(seed=0, solver="sklearn"))
    assert [c for c, _ in torch_result.val_curve] == list(PROBE_CS) == [c for c, _ in sklearn_result.val_curve]
    # One validation image is 1/288 of the split: the curves agree to within two images per C.
    np.testing.assert_allclose([a for _, a in torch_result.val_curve], [a for _, a in sklearn_result.val_curve],
                               atol=2.5 / 288)
    assert torch_result.test_accuracy >= sklearn_result.test_accuracy - 0.01
    if torch_result.best_C == sklearn_result.best_C:
        assert np.mean(torch_result.predictions == sklearn_result.predictions) >= 0.99
    assert torch_result.solver == "torch L-BFGS, 9 C values (cpu)"
    assert sklearn_result.solver == "sklearn lbfgs, 9 C values"


@pytest.mark.slow
def test_single_C_predictions_match_sklearn_on_digits(digits):
    X, y = digits
    ours = LinearProbe((0.1,), solver="torch").fit(X, y)
    ref = LinearProbe((0.1,), solver="sklearn").fit(X, y)
    assert np.mean(ours.predict(X) == ref.predict(X)) >= 0.995
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=0.02)
    # the fitted Pipeline is a real sklearn one: the fine-tune head reads coef_ / intercept_ from it
    assert ours.pipeline_[-1].coef_.shape == ref.pipeline_[-1].coef_.shape == (10, 64)


def test_binary_probe_has_sklearns_layout():
    X, y = make_classification(n_samples=200, n_features=8, random_state=1)
    ours = LinearProbe((1.0,), solver="torch").fit(X, y)
    ref = LinearProbe((1.0,), solver="sklearn").fit(X, y)
    assert ours.pipeline_[-1].coef_.shape == (1, 8) and ours.pipeline_[-1].intercept_.shape == (1,)
    np.testing.assert_allclose(ours.pipeline_[-1].coef_, ref.pipeline_[-1].coef_, atol=2e-2)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


def test_string_labels_keep_their_classes():
    X, y = make_classification(n_samples=150, n_features=6, n_informative=4, n_classes=3, random_state=2)
    labels = np.array(["cat", "dog", "eel"])[y]
    probe = LinearProbe((1.0,)).fit(X, labels)
    assert list(probe.classes_) == ["cat", "dog", "eel"] and set(probe.predict(X)) <= set(labels)


def test_solver_is_part_of_the_cache_key_and_checked():
    assert ProbeConfig(solver="torch").key() != ProbeConfig(solver="sklearn").key()
    with pytest.raises(PTMError, match="Unknown probe solver"):
        LinearProbe(solver="newton").fit(np.zeros((20, 2)), np.arange(20) % 2)


def test_cancel_stops_the_batched_sweep(digits):
    X, y = digits
    with pytest.raises(Cancelled):
        LinearProbe().fit(X, y, cancelled=lambda: True)


def test_progress_reports_the_sweep_then_the_refit(digits):
    X, y = digits
    calls = []
    LinearProbe((0.1, 1.0), c_limits=None).fit(X[:400], y[:400], callback=lambda done, total: calls.append((done, total)))
    assert calls == [(2, 3), (3, 3)]


@pytest.mark.parametrize("solver", ["torch", "sklearn"])
def test_progress_counts_the_extension_past_the_grid(solver):
    # Separable blobs score 100 % at every C: the choice sits on the lower edge and the sweep goes down to 1e-6.
    X, y = gaussian_blobs(300, centres=3, dim=8, spread=1.0)
    calls = []
    probe = LinearProbe((1e-3, 1e-2), solver=solver).fit(X, y, callback=lambda done, total: calls.append((done, total)))
    assert probe.extended_Cs_ == (1e-4, 1e-5, 1e-6)
    grid = [(2, 3)] if solver == "torch" else [(1, 3), (2, 3)]  # one batch of heads, or one fit per C
    assert calls == grid + [(3, 4), (4, 5), (5, 6), (6, 6)]

"""How the probe picks C: the one-standard-error rule on the validation curve, and the sweep past the grid's edges."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import load_digits

from ptm_core.base.configs import PROBE_C_LIMITS, PROBE_CS, ProbeConfig
from ptm_core.base.errors import PTMError
from ptm_core.base.stats import wilson_interval
from ptm_core.probes.c_choice import accuracy_standard_error, choose_C, sweep_C
from ptm_core.probes.linear import LinearProbe, cached_linear_probe, run_linear_probe
from ptm_core.runs.artifacts import artifact_dir, save_npz
from ptm_core.base.configs import stable_hash
from arrays import gaussian_blobs

FLAT = [(0.01, 0.900), (0.1, 0.910), (1.0, 0.915), (10.0, 0.905)]


def test_standard_error_is_the_binomial_one():
    for p, n in [(0.915, 800), (0.5, 10), (0.99, 96)]:
        assert accuracy_standard_error(p, n) == pytest.approx(math.sqrt(p * (1 - p) / n), rel=1e-12)
    assert accuracy_standard_error(1.0, 48) == 0.0
    with pytest.raises(PTMError):
        accuracy_standard_error(0.9, 0)


def test_one_se_rule_keeps_the_smallest_C_within_one_se_of_the_best():
    # SE at 0.915 on 800 images is 0.99 points: 0.910 (C=0.1) is within it, 0.900 (C=0.01) is not.
    choice = choose_C(FLAT, 800)
    assert choice.best_val_C == 1.0 and choice.best_val_accuracy == 0.915
    assert choice.val_se == pytest.approx(math.sqrt(0.915 * 0.085 / 800))
    assert choice.C == 0.1
    assert choose_C(FLAT, 800, "best").C == 1.0  # the argmax, the rule before
    # The same curve measured on 8,000 images: SE 0.31 points, nothing else is within it.
    assert choose_C(FLAT, 8000).C == 1.0
    # On 100 images (SE 2.8 points) the whole curve is within it: the strongest regularisation.
    assert choose_C(FLAT, 100).C == 0.01
    assert choose_C(list(reversed(FLAT)), 800).C == 0.1  # the curve's order does not matter
    with pytest.raises(PTMError, match="Unknown rule"):
        choose_C(FLAT, 800, "median")


def test_ties_with_the_best_go_to_the_smallest_C():
    curve = [(0.1, 0.9), (1.0, 0.95), (10.0, 0.95)]
    assert choose_C(curve, 10**6, "best").best_val_C == 1.0
    assert choose_C([(c, 1.0) for c in (0.1, 1.0, 10.0)], 50).C == 0.1  # SE 0 at 100 %: a tie is still a tie


class Curve:
    """A made-up validation curve as a function of log10 C, recording what the sweep asked for."""

    def __init__(self, accuracy):
        self.accuracy, self.asked = accuracy, []

    def __call__(self, Cs):
        self.asked.append(tuple(Cs))
        return [self.accuracy(math.log10(C)) for C in Cs]


def test_a_peak_past_the_top_edge_is_followed_there_and_no_further():
    curve = Curve(lambda x: 0.9 - 0.01 * (x - 3) ** 2)  # best at C = 1e3
    sweep = sweep_C(PROBE_CS, curve, 10**6, limits=PROBE_C_LIMITS)
    assert sweep.extended_Cs == (100.0, 1000.0, 10000.0)
    assert sweep.choice.C == sweep.choice.best_val_C == 1000.0
    assert curve.asked == [PROBE_CS, (100.0,), (1000.0,), (10000.0,)]
    assert [c for c, _ in sweep.curve] == sorted(PROBE_CS + sweep.extended_Cs)


def test_a_curve_that_keeps_rising_stops_at_the_upper_limit():
    sweep = sweep_C(PROBE_CS, Curve(lambda x: 0.5 + 0.01 * x), 10**6, limits=PROBE_C_LIMITS)
    assert sweep.extended_Cs == (100.0, 1000.0, 10000.0, 100000.0) and sweep.choice.C == 1e5


def test_a_choice_at_the_bottom_edge_goes_down_until_a_smaller_C_is_worse():
    # Best at C = 1e-4; one decade further down (1e-5) is 4 points worse, far outside one SE.
    sweep = sweep_C(PROBE_CS, Curve(lambda x: 0.9 - 0.04 * (x + 4) ** 2), 10**4, limits=PROBE_C_LIMITS)
    assert sweep.extended_Cs == (1e-4, 1e-5) and sweep.choice.C == 1e-4
    # Flat all the way down: the one-SE rule keeps the strongest regularisation there is, the lower limit.
    flat = sweep_C(PROBE_CS, Curve(lambda x: 0.9 - 1e-4 * x), 800, limits=PROBE_C_LIMITS)
    assert flat.extended_Cs == (1e-4, 1e-5, 1e-6) and flat.choice.C == 1e-6


def test_an_edge_step_stops_at_the_limit_even_off_a_decade():
    sweep = sweep_C((0.003, 0.3), Curve(lambda x: 0.9 - 1e-3 * x), 100, limits=PROBE_C_LIMITS)
    assert sweep.extended_Cs == (3e-4, 3e-5, 3e-6, 1e-6) and sweep.choice.C == 1e-6


def test_a_flat_curve_best_at_the_top_extends_both_ways_at_once():
    # Rising by 0.1 point a decade: all within one SE (1 point on 900 images), the best at the top edge.
    curve = Curve(lambda x: 0.9 + 0.001 * min(x, 3))
    planned = []
    sweep = sweep_C(PROBE_CS, curve, 900, limits=PROBE_C_LIMITS, before_extending=planned.append)
    assert curve.asked[1] == (1e-4, 100.0)  # one round, both directions
    assert sweep.choice.C == 1e-6 and sweep.choice.best_val_C == 1000.0
    assert planned == [len(asked) for asked in curve.asked[1:]]
    assert len({c for asked in curve.asked for c in asked}) == sum(map(len, curve.asked))  # no C fitted twice


def test_a_single_C_or_no_limits_is_never_extended():
    curve = Curve(lambda x: 0.9 - 0.01 * x)
    assert sweep_C((0.1,), curve, 100, limits=PROBE_C_LIMITS).extended_Cs == ()
    assert sweep_C(PROBE_CS, curve, 100, limits=None).extended_Cs == ()
    assert curve.asked == [(0.1,), PROBE_CS]


def needs_a_huge_C(n: int = 600, eps: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The label is the sign of a small difference between two nearly equal features: only a weight vector with
    large, opposite weights on the two finds it, so accuracy keeps rising with C far past the grid's 10."""
    rng = np.random.default_rng(seed)
    z, s = rng.normal(size=(n, 1)), rng.normal(size=(n, 1))
    X = np.hstack([z + eps * s, z, rng.normal(size=(n, 4))]).astype(np.float32)
    return X, (s[:, 0] > 0).astype(np.int64)


@pytest.mark.parametrize("solver", ["torch", "sklearn"])
def test_end_to_end_the_sweep_goes_up_past_the_grid(solver):
    X, y = needs_a_huge_C()
    result = run_linear_probe(X, y, ProbeConfig(solver=solver))
    assert result.extended_Cs == (100.0, 1000.0, 10000.0)
    assert result.best_C == 1000.0 and not result.at_limit  # off the edge before the limit
    grid_only = run_linear_probe(X, y, ProbeConfig(solver=solver, c_limits=None))
    assert grid_only.best_C in PROBE_CS and result.test_accuracy > grid_only.test_accuracy + 0.05
    assert [c for c, _ in result.val_curve] == sorted(PROBE_CS + result.extended_Cs)
    assert f"{len(result.val_curve)} C values" in result.solver
    assert "the sweep went on to C=100, 1000, 10000." in result.c_rule_text


@pytest.mark.parametrize("solver", ["torch", "sklearn"])
def test_end_to_end_limits_hold_both_ways(solver):
    X, y = needs_a_huge_C(eps=0.01)
    up = run_linear_probe(X, y, ProbeConfig(solver=solver))
    assert up.best_C == 1e5 and up.at_limit and up.extended_Cs[-1] == 1e5
    # Separable blobs: every C scores 100 % on validation, so the rule keeps the strongest regularisation.
    X, y = gaussian_blobs(300, centres=3, dim=8, spread=1.0)
    down = run_linear_probe(X, y, ProbeConfig(solver=solver))
    assert down.extended_Cs == (1e-4, 1e-5, 1e-6) and down.best_C == 1e-6 and down.at_limit
    assert down.test_accuracy == 1.0
    assert "stopped at its limit" in down.c_rule_text


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), y.astype(np.int64)


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["torch", "sklearn"])
def test_end_to_end_one_se_rule_on_digits(digits, solver):
    X, y = digits
    result = run_linear_probe(X, y, ProbeConfig(solver=solver))
    before = run_linear_probe(X, y, ProbeConfig(solver=solver, c_rule="best", c_limits=None))
    assert result.n_val == 288 and result.best_val_C == before.best_C
    accuracies = dict(result.val_curve)
    threshold = accuracies[result.best_val_C] - result.val_se
    # The digits curve is flat near its top: the rule moves to a smaller C, the smallest within one SE.
    assert result.best_C < result.best_val_C and accuracies[result.best_C] >= threshold
    assert all(a < threshold for c, a in result.val_curve if c < result.best_C)
    assert "is the smallest C within 1 SE" in result.c_rule_text


def test_each_validation_point_has_its_wilson_interval():
    X, y = gaussian_blobs(240, centres=4, dim=6, spread=4.0, seed=1)
    X = X + np.random.default_rng(0).normal(scale=2.0, size=X.shape)
    result = run_linear_probe(X, y, ProbeConfig(seed=3))
    assert result.n_val == 39  # 20 % of the 192 training images, rounded up
    assert result.val_curve_ci95 == [wilson_interval(round(a * 39), 39) for _, a in result.val_curve]
    summary = result.summary()
    assert [p["ci95"] for p in summary["val_curve"]] == [list(ci) for ci in result.val_curve_ci95]
    assert {"c_rule", "c_rule_text", "best_val_C", "val_se", "n_val", "sweep_extended", "extended_Cs"} <= set(summary)
    assert summary["c_rule"] == "one-se" and summary["c_rule_text"].startswith("one-standard-error rule: C=")


def test_the_rule_is_in_the_cache_key_and_survives_the_cache():
    assert len({ProbeConfig().key(), ProbeConfig(c_rule="best").key(), ProbeConfig(c_limits=None).key()}) == 3
    X, y = gaussian_blobs(200, centres=3, dim=6, spread=3.0)
    first = cached_linear_probe(X, y, "blobs", ProbeConfig())
    again = cached_linear_probe(X, y, "blobs", ProbeConfig())
    assert again.from_cache and not first.from_cache
    for field in ("best_C", "best_val_C", "val_se", "n_val", "c_rule", "extended_Cs", "c_limits", "val_curve"):
        assert getattr(again, field) == getattr(first, field), field
    assert again.c_rule_text == first.c_rule_text and again.val_curve_ci95 == first.val_curve_ci95


def test_a_cache_written_before_the_rule_reads_back_without_it():
    X, y = gaussian_blobs(200, centres=3, dim=6, spread=3.0)
    fresh = run_linear_probe(X, y, ProbeConfig())
    config = ProbeConfig()
    old_meta = {k: fresh.summary()[k] for k in ("test_accuracy", "test_accuracy_ci95", "best_C", "n_train", "n_test",
                                               "seconds", "solver")}
    save_npz(artifact_dir("probes") / f"{stable_hash(['old', config.key()])}.npz", meta=old_meta,
             val_curve=np.array(fresh.val_curve), test_indices=fresh.test_indices, predictions=fresh.predictions,
             probabilities=fresh.probabilities, all_predictions=fresh.all_predictions,
             all_confidence=fresh.all_confidence)
    old = cached_linear_probe(X, y, "old", config)
    assert old.from_cache and old.c_rule == "" and old.n_val == 0 and old.extended_Cs == ()
    assert old.c_rule_text == "" and old.val_curve_ci95 == [] and not old.at_limit
    assert [p["ci95"] for p in old.summary()["val_curve"]] == [None] * len(old.val_curve)


def test_an_unknown_rule_is_refused_before_any_fit():
    with pytest.raises(PTMError, match="Unknown rule"):
        LinearProbe(c_rule="median").fit(np.zeros((20, 2)), np.arange(20) % 2, cancelled=lambda: pytest.fail("fitted"))


def test_linear_probe_reports_the_rule_and_the_extension():
    X, y = needs_a_huge_C(300)
    probe = LinearProbe(c_rule="best").fit(X, y)
    assert probe.best_C_ == probe.best_val_C_ and probe.best_C_ > max(PROBE_CS)
    assert probe.val_Cs_ == sorted(PROBE_CS + tuple(probe.extended_Cs_))
    assert len(probe.val_scores_) == len(probe.val_Cs_) and probe.n_val_ == 60

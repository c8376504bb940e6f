"""How sure each number is: Wilson's interval, McNemar's exact test, and `versus` (the same probe on two feature
sets of the same images, compared image by image)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from math import comb

import numpy as np
import pytest

from ptm_core.base.configs import ProbeConfig
from ptm_core.base.errors import PTMError
from ptm_core.base.stats import mcnemar_exact, mean_interval, paired_test, wilson_interval
from ptm_core.evals.versus import probe_versus
from ptm_core.features.featureset import FeatureSet
from ptm_core.probes.linear import run_linear_probe

Z95 = 1.959963984540054


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    """Wilson (1927), written out: the reference the engine (scipy) must match."""
    p = k / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return centre - half, centre + half


def mcnemar_by_hand(b: int, c: int) -> float:
    """Exact two-sided McNemar: twice the smaller binomial tail of the discordant counts at 1/2, at most 1."""
    n = b + c
    return min(1.0, 2 * sum(comb(n, i) for i in range(min(b, c) + 1)) / 2**n)


@pytest.mark.parametrize("k,n", [(185, 200), (0, 10), (10, 10), (4675, 5000), (81, 263), (1, 2)])
def test_wilson_interval_is_wilsons(k, n):
    low, high = wilson_interval(k, n)
    ref_low, ref_high = wilson_by_hand(k, n)
    assert abs(low - ref_low) < 1e-9 and abs(high - ref_high) < 1e-9
    assert 0.0 <= low <= k / n <= high <= 1.0


def test_wilson_interval_textbook_value():
    # Newcombe (1998), Statistics in Medicine 17:857, table I: 81/263 -> 0.2553 to 0.3662.
    low, high = wilson_interval(81, 263)
    assert round(low, 4) == 0.2553 and round(high, 4) == 0.3662


@pytest.mark.parametrize("b,c", [(0, 0), (10, 2), (2, 10), (5, 5), (0, 7), (30, 12), (57, 28)])
def test_mcnemar_exact_is_the_binomial_test_of_the_discordant_pairs(b, c):
    assert abs(mcnemar_exact(b, c) - mcnemar_by_hand(b, c)) < 1e-12


def test_bad_counts_are_one_line_errors():
    for call in (lambda: wilson_interval(3, 0), lambda: wilson_interval(5, 4), lambda: mcnemar_exact(-1, 3)):
        with pytest.raises(PTMError):
            call()


def t_interval_by_hand(values) -> tuple[float, float]:
    """Student's t-interval written out: mean ± t_{0.975, n-1} · s / sqrt(n), s with ddof 1."""
    from scipy.stats import t

    values = np.asarray(values, dtype=float)
    n, mean = len(values), float(np.mean(values))
    half = t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n)
    return mean - half, mean + half


@pytest.mark.parametrize("values", [[0.91, 0.93, 0.92, 0.95, 0.90], [0.2, 0.8], [0.5, 0.52, 0.51],
                                    list(np.random.default_rng(0).uniform(0.6, 0.9, 20))])
def test_mean_interval_is_students_t(values):
    low, high = mean_interval(values)
    ref_low, ref_high = t_interval_by_hand(values)
    assert abs(low - ref_low) < 1e-12 and abs(high - ref_high) < 1e-12
    assert low < np.mean(values) < high


def test_mean_interval_textbook_value():
    # Student (1908) / Cushny & Peebles' sleep data, the extra hours of drug 2 over drug 1 in 10 patients; R's
    # t.test(extra ~ group, data = sleep, paired = TRUE) prints the 95 % interval 0.7001142 to 2.4598858.
    low, high = mean_interval([1.2, 2.4, 1.3, 1.3, 0.0, 1.0, 1.8, 0.8, 4.6, 1.4])
    assert round(low, 7) == 0.7001142 and round(high, 7) == 2.4598858


def test_mean_interval_of_no_spread_is_the_mean_and_of_nothing_an_error():
    assert mean_interval([0.7]) == (0.7, 0.7)
    assert mean_interval([0.25, 0.25, 0.25]) == (0.25, 0.25)
    for bad in ([], [0.5, float("nan")], [[0.1, 0.2]]):
        with pytest.raises(PTMError):
            mean_interval(bad)


def test_paired_test_counts_only_the_discordant_images():
    truth = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0] * 10)
    a = truth.copy()
    b = truth.copy()
    b[:30] = (truth[:30] + 1) % 3  # b wrong on the first 30
    a[90:] = (truth[90:] + 1) % 3  # a wrong on the last 10
    test = paired_test(truth, a, b)
    assert (test.a_only_right, test.b_only_right, test.n_test) == (30, 10, 100)
    assert test.a_accuracy == 0.9 and test.b_accuracy == 0.7
    assert test.p_value == pytest.approx(mcnemar_by_hand(30, 10)) and test.p_value < 0.05 and test.verdict == "a"
    assert test.a_ci95 == pytest.approx(wilson_by_hand(90, 100))
    near = paired_test(truth, a, truth)  # 0 vs 10 discordant: p = 0.002, b wins
    assert near.verdict == "b"
    tie = paired_test(truth, truth, truth)
    assert tie.p_value == 1.0 and tie.verdict == "tie"
    with pytest.raises(PTMError):
        paired_test(truth, a[:50], b)


def _features(features: np.ndarray, labels: np.ndarray, ids: list[str] | None = None) -> FeatureSet:
    return FeatureSet(features.astype(np.float32), labels, ["zero", "one", "two"],
                      ids or [f"img-{i}" for i in range(len(labels))], "key")


def _two_sets(n: int = 600, seed: int = 0) -> tuple[FeatureSet, FeatureSet]:
    """Same images, same labels: `good` separates the classes, `poor` barely does."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    centres = rng.normal(size=(3, 16)) * 3
    good = centres[labels] + rng.normal(size=(n, 16))
    poor = centres[labels] * 0.15 + rng.normal(size=(n, 16))
    return _features(good, labels), _features(poor, labels)


def test_probe_interval_is_wilsons_on_its_test_split():
    good, _ = _two_sets()
    result = run_linear_probe(good.features, good.labels, ProbeConfig())
    correct = int(round(result.test_accuracy * result.n_test))
    assert result.summary()["test_accuracy_ci95"] == pytest.approx(list(wilson_by_hand(correct, result.n_test)),
                                                                   abs=0.003)


def test_versus_of_a_set_with_itself_is_a_tie_with_p_1():
    good, _ = _two_sets()
    result = probe_versus(good, good).summary()
    assert result["verdict"] == "tie" and result["p_value"] == 1.0
    assert result["a_only_right"] == result["b_only_right"] == 0 and result["a"] == result["b"]


def test_versus_finds_the_better_features_and_prints_mcnemars_p_for_its_counts():
    good, poor = _two_sets()
    result = probe_versus(good, poor).summary()
    assert result["verdict"] == "a" and result["p_value"] < 0.01
    assert result["p_value"] == pytest.approx(mcnemar_by_hand(result["a_only_right"], result["b_only_right"]))
    assert result["n_test"] == 120 and result["n_shared"] == 600
    flipped = probe_versus(poor, good).summary()
    assert flipped["verdict"] == "b" and flipped["p_value"] == pytest.approx(result["p_value"])


def test_versus_matches_images_by_id_whatever_their_order():
    good, poor = _two_sets()
    order = np.random.default_rng(1).permutation(len(poor.ids))
    shuffled = FeatureSet(poor.features[order], poor.labels[order], poor.class_names, [poor.ids[i] for i in order],
                          "key")
    assert probe_versus(good, shuffled).summary() == probe_versus(good, poor).summary()


def test_versus_refuses_sets_of_other_images_or_other_labels():
    good, poor = _two_sets()
    elsewhere = FeatureSet(poor.features, poor.labels, poor.class_names, [f"other-{i}" for i in poor.ids], "key")
    with pytest.raises(PTMError, match="share no image"):
        probe_versus(good, elsewhere)
    relabelled = FeatureSet(poor.features, (poor.labels + 1) % 3, poor.class_names, poor.ids, "key")
    with pytest.raises(PTMError, match="differently"):
        probe_versus(good, relabelled)


def test_versus_cli_json(tmp_path, monkeypatch):
    good, poor = _two_sets()
    good.to_npz(tmp_path / "a.npz")
    poor.to_npz(tmp_path / "b.npz")
    out = subprocess.run([sys.executable, "-m", "ptm_core", "versus", "--a", str(tmp_path / "a.npz"), "--b",
                          str(tmp_path / "b.npz"), "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert set(shown) >= {"a", "b", "n_test", "a_only_right", "b_only_right", "p_value", "verdict"}
    assert shown["verdict"] == "a" and shown["a"]["test_accuracy_ci95"][0] < shown["a"]["test_accuracy"]
    missing = subprocess.run([sys.executable, "-m", "ptm_core", "versus", "--a", str(tmp_path / "a.npz"), "--b",
                              str(tmp_path / "none.npz")], capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_pretrained_beats_random_init_on_2000_mnist_digits(tmp_path):
    """The issue's acceptance check: bundled lite0 vs the same network with random weights, 2,000 MNIST images at
    96 px, fp32 (the same numbers on every machine)."""
    from ptm_core.base.configs import BackboneConfig, DatasetConfig, ExtractionConfig
    from ptm_core.features.extraction import extract

    data, extraction = DatasetConfig("mnist5k", 2000), ExtractionConfig(96, 64, "cpu", precision="fp32")
    pretrained = extract(data, BackboneConfig("tf_efficientnet_lite0", "bundled"), extraction)
    random_init = extract(data, BackboneConfig("tf_efficientnet_lite0", "random"), extraction)
    result = probe_versus(pretrained, random_init).summary()
    assert result["verdict"] == "a" and result["p_value"] < 0.01, result

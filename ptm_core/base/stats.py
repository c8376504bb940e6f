"""How sure a number is: Wilson's interval for an accuracy on one test split, and McNemar's exact test for two
classifiers scored on the same test images.

Wilson (1927) keeps its coverage near 95 % at the sizes this app tests on (a few hundred images) and at
accuracies near 100 %, where the normal approximation's interval spills past 1. McNemar's test (1947) looks only
at the discordant images, those exactly one of the two classifiers gets right; its exact form is a two-sided
binomial test of those counts against 1/2 (Edwards 1948; Fagerland et al. 2013 for small counts). A number that is
a mean over seeded draws (label efficiency) gets Student's t-interval (Student 1908) over the draws instead. All
come from scipy, not hand-written numerics.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ptm_core.base.errors import PTMError

CONFIDENCE = 0.95
SIGNIFICANCE = 0.05  # a difference with p at or above this is reported as a tie


def wilson_interval(correct: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson's score interval for `correct` right out of `n`."""
    if n <= 0 or not 0 <= correct <= n:
        raise PTMError(f"An accuracy interval needs 0 <= correct <= n and n > 0, got {correct} of {n}.")
    from scipy import stats  # here, not at import: the ground floor stays light for every command

    interval = stats.binomtest(int(correct), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def accuracy_interval(accuracy: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson's interval for an accuracy measured on `n` images (accuracy * n right, rounded to whole images)."""
    return wilson_interval(int(round(accuracy * n)), n, confidence)


def mean_interval(values, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student's t-interval for the mean of `values` (independent draws): mean ± t_{(1+c)/2, n-1} · s / sqrt(n),
    with s the sample standard deviation (ddof 1), from scipy.stats.t.interval (Student 1908).

    One value, or values that all agree, have no spread to measure: the interval is (mean, mean), which says
    nothing about how sure the mean is; a caller with one draw should give another interval (label efficiency
    gives Wilson's on its test split) or say so.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or not len(values) or not np.isfinite(values).all():
        raise PTMError(f"A mean's interval needs one or more finite values, got {values.tolist()!r}.")
    mean = float(values.mean())
    if len(values) == 1 or np.ptp(values) == 0:
        return mean, mean
    from scipy import stats

    low, high = stats.t.interval(confidence, len(values) - 1, loc=mean, scale=stats.sem(values))
    return float(low), float(high)


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """McNemar's exact two-sided p-value from the discordant counts (1.0 when there are none)."""
    if a_only < 0 or b_only < 0:
        raise PTMError(f"McNemar's test needs non-negative counts, got {a_only} and {b_only}.")
    if a_only + b_only == 0:
        return 1.0
    from scipy import stats

    return float(stats.binomtest(int(min(a_only, b_only)), int(a_only + b_only), 0.5).pvalue)


@dataclass(frozen=True)
class PairedTest:
    """Two classifiers on the same test images: each one's accuracy and interval, the discordant counts, McNemar's
    exact p-value, and the verdict ("a", "b", or "tie" when p >= SIGNIFICANCE)."""

    n_test: int
    a_accuracy: float
    b_accuracy: float
    a_ci95: tuple[float, float]
    b_ci95: tuple[float, float]
    a_only_right: int
    b_only_right: int
    p_value: float
    verdict: str

    def to_dict(self) -> dict:
        return asdict(self)


def paired_test(truth: np.ndarray, a_predictions: np.ndarray, b_predictions: np.ndarray) -> PairedTest:
    """Compare two sets of predictions of the same test images, image by image."""
    truth, a, b = np.asarray(truth), np.asarray(a_predictions), np.asarray(b_predictions)
    if not len(truth) or a.shape != truth.shape or b.shape != truth.shape:
        raise PTMError(f"A paired test needs both methods' predictions of the same test images; got "
                       f"{a.shape[0] if a.ndim else 0} and {b.shape[0] if b.ndim else 0} for {len(truth)}.")
    a_right, b_right = a == truth, b == truth
    a_only, b_only = int(np.sum(a_right & ~b_right)), int(np.sum(b_right & ~a_right))
    p = mcnemar_exact(a_only, b_only)
    verdict = "tie" if p >= SIGNIFICANCE else ("a" if a_only > b_only else "b")
    n = len(truth)
    return PairedTest(n, float(a_right.mean()), float(b_right.mean()), wilson_interval(int(a_right.sum()), n),
                      wilson_interval(int(b_right.sum()), n), a_only, b_only, p, verdict)


def mcnemar_sample_size(a_only: int, b_only: int, n: int, power: float = 0.8,
                        significance: float = SIGNIFICANCE) -> int | None:
    """Test images McNemar's test would need to tell these two classifiers apart, at this power, if the discordant
    rates seen on `n` images held: Connor's formula (Connor 1987, Biometrics 43:207-211),

        n = (z_{1-a/2} sqrt(psi) + z_{power} sqrt(psi - delta^2))^2 / delta^2,

    psi the share of discordant images, delta the difference of the two one-sided shares. A normal approximation:
    tests/test_stats_power.py checks it against the exact test's power. None when they disagree on no image or split
    the discordant ones evenly: no difference to detect, at any size.
    """
    if n <= 0 or a_only < 0 or b_only < 0 or a_only + b_only > n:
        raise PTMError(f"A sample size needs 0 <= discordant counts <= n, got {a_only}, {b_only} of {n}.")
    if a_only == b_only:
        return None
    from scipy import stats

    psi, delta = (a_only + b_only) / n, abs(a_only - b_only) / n
    z_alpha, z_beta = stats.norm.ppf(1 - significance / 2), stats.norm.ppf(power)
    return int(np.ceil((z_alpha * np.sqrt(psi) + z_beta * np.sqrt(psi - delta ** 2)) ** 2 / delta ** 2))


@dataclass(frozen=True)
class DrawsTest:
    """Two means over independent draws (e.g. 5 seeded label samples each): Welch's t-test (Welch 1947), which does
    not assume equal spreads; verdict "a", "b", or "tie" when p >= SIGNIFICANCE."""

    a_mean: float
    b_mean: float
    p_value: float
    verdict: str


def draws_test(a_values, b_values) -> DrawsTest:
    """Welch's two-sided t-test of two sets of accuracies, each from its own draws (at least two a side). When no
    draw on either side differs from its mean, t is undefined: the means then differ exactly (p = 0) or not at all."""
    a, b = np.asarray(a_values, dtype=float), np.asarray(b_values, dtype=float)
    if len(a) < 2 or len(b) < 2:
        raise PTMError(f"A test over draws needs at least two accuracies on each side, got {len(a)} and {len(b)}.")
    if a.std() == 0 and b.std() == 0:
        p = 1.0 if a.mean() == b.mean() else 0.0
    else:
        from scipy import stats

        p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    verdict = "tie" if p >= SIGNIFICANCE else ("a" if a.mean() > b.mean() else "b")
    return DrawsTest(float(a.mean()), float(b.mean()), p, verdict)

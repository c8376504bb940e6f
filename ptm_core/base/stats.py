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

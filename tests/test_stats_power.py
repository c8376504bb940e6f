"""How many test images would tell two classifiers apart (Connor 1987), and Welch's test of means over draws."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ptm_core.base.errors import PTMError
from ptm_core.base.stats import draws_test, mcnemar_exact, mcnemar_sample_size


def connor(a_only: int, b_only: int, n: int, power: float = 0.8) -> int:
    """Connor (1987), eq. 3, written out with the normal quantiles of the textbook: 1.959964 and 0.841621."""
    psi, delta = (a_only + b_only) / n, abs(a_only - b_only) / n
    z_a, z_b = 1.959964, {0.8: 0.841621, 0.9: 1.281552}[power]
    return math.ceil((z_a * math.sqrt(psi) + z_b * math.sqrt(psi - delta ** 2)) ** 2 / delta ** 2)


def exact_power(n: int, p_a: float, p_b: float, alpha: float = 0.05) -> float:
    """Power of McNemar's exact test on n images whose discordant shares are p_a and p_b: the chance that the
    discordant count D ~ Bin(n, p_a + p_b) and its split k ~ Bin(D, p_a / (p_a + p_b)) reject at alpha."""
    psi, total = p_a + p_b, 0.0
    d = np.arange(n + 1)
    weights = stats.binom.pmf(d, n, psi)
    for discordant, weight in zip(d, weights):
        if weight < 1e-12 or discordant == 0:
            continue
        k = np.arange(discordant + 1)
        p_values = np.minimum(1.0, 2 * stats.binom.cdf(np.minimum(k, discordant - k), discordant, 0.5))
        total += weight * stats.binom.pmf(k, discordant, p_a / psi)[p_values < alpha].sum()
    return total


@pytest.mark.parametrize("a_only,b_only,n", [(57, 28, 400), (16, 14, 200), (111, 46, 1000), (3, 0, 50)])
def test_sample_size_is_connors_formula(a_only, b_only, n):
    assert mcnemar_sample_size(a_only, b_only, n) == connor(a_only, b_only, n)
    assert mcnemar_sample_size(b_only, a_only, n) == connor(a_only, b_only, n)  # symmetric in the two
    assert mcnemar_sample_size(a_only, b_only, n, power=0.9) == connor(a_only, b_only, n, 0.9)


def test_at_the_size_it_gives_the_exact_test_has_about_the_power_asked_for():
    # The rates measured for pretrained vs random init on 400 digits: 57 and 28 discordant images.
    needed = mcnemar_sample_size(57, 28, 400)
    assert 250 < needed < 400  # they were told apart on 400 (p = 0.0022): fewer would do at 80 %
    power = exact_power(needed, 57 / 400, 28 / 400)
    assert 0.72 < power < 0.88, power  # Connor's normal approximation, checked against the exact test
    assert exact_power(needed // 3, 57 / 400, 28 / 400) < 0.5  # and a third of it would not do


def test_a_tie_on_200_images_needs_many_more_and_an_even_split_needs_infinitely_many():
    needed = mcnemar_sample_size(16, 14, 200)  # LP-FT vs its probe on 200 digits: p = 0.86
    assert mcnemar_exact(16, 14) > 0.05 and needed > 10_000
    assert mcnemar_sample_size(9, 9, 200) is None and mcnemar_sample_size(0, 0, 200) is None
    for bad in ((-1, 2, 10), (6, 6, 10), (1, 1, 0)):
        with pytest.raises(PTMError, match="sample size needs"):
            mcnemar_sample_size(*bad)


def test_draws_test_is_welchs():
    a, b = [0.81, 0.78, 0.84, 0.80, 0.79], [0.70, 0.76, 0.69, 0.73, 0.71]
    va, vb, n = np.var(a, ddof=1), np.var(b, ddof=1), 5
    t = (np.mean(a) - np.mean(b)) / math.sqrt(va / n + vb / n)
    df = (va / n + vb / n) ** 2 / ((va / n) ** 2 / (n - 1) + (vb / n) ** 2 / (n - 1))  # Welch-Satterthwaite
    result = draws_test(a, b)
    assert result.p_value == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-9)
    assert result.verdict == "a" and draws_test(b, a).verdict == "b"
    assert draws_test([0.8, 0.82, 0.78], [0.79, 0.81, 0.8]).verdict == "tie"


def test_draws_test_without_spread_and_with_too_few_draws():
    assert draws_test([0.9, 0.9], [0.8, 0.8]).verdict == "a"  # every draw the same: the means differ exactly
    assert draws_test([0.9, 0.9], [0.9, 0.9]).p_value == 1.0
    with pytest.raises(PTMError, match="at least two"):
        draws_test([0.9], [0.8, 0.7])

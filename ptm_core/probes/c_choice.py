"""Which C a linear probe keeps: a rule that reads the validation curve, and a sweep that grows past its edges.

The default rule, "one-se", is the one-standard-error rule (Breiman, Friedman, Olshen & Stone 1984, Classification
and Regression Trees, §3.4.3; Hastie, Tibshirani & Friedman, The Elements of Statistical Learning, 2nd ed. 2009,
§7.10): of the Cs whose validation accuracy is within one standard error of the best, keep the smallest, the
strongest L2 penalty. The standard error is the binomial one of the best accuracy p on n_val validation images,
sqrt(p (1 - p) / n_val). Where the curve is flat within that noise, the argmax is a coin toss between Cs the split
cannot tell apart; the rule makes the pick stable and prefers the simpler model. "best" keeps the argmax.

A choice on the edge of the grid means the grid may have cut the curve short. The sweep then goes on by decades
in that direction, up to the limits (1e-6 to 1e5 by default: the range DINOv2's logistic-regression evaluation
sweeps, dinov2/eval/log_regression.py, C_POWER_RANGE), until the choice moves off the edge. Downwards it follows
the chosen C (a smaller C might still be within one SE of the best); upwards the best one (a higher peak past the
edge raises the bar the chosen C must clear).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ptm_core.base.configs import PROBE_C_RULES
from ptm_core.base.errors import PTMError

Scorer = Callable[[tuple[float, ...]], list[float]]  # validation accuracy of each C asked for
TOLERANCE = 1e-9  # accuracies are whole images over n_val; this only absorbs float rounding in best - SE


def accuracy_standard_error(accuracy: float, n: int) -> float:
    """Binomial standard error of an accuracy measured on n images, sqrt(p (1 - p) / n) (scipy's binom.std / n)."""
    if n <= 0:
        raise PTMError(f"A standard error needs at least one image, got {n}.")
    from scipy import stats  # here, not at import, like base.stats

    return float(stats.binom(int(n), float(accuracy)).std() / n)


@dataclass(frozen=True)
class CChoice:
    C: float  # the C the rule keeps
    best_val_C: float  # the argmax of the validation curve (the smallest C among ties)
    best_val_accuracy: float
    val_se: float  # one standard error of best_val_accuracy on n_val images


def choose_C(curve: Sequence[tuple[float, float]], n_val: int, rule: str = "one-se") -> CChoice:
    """Apply `rule` to a validation curve of (C, accuracy) pairs, in any order."""
    if rule not in PROBE_C_RULES:
        raise PTMError(f"Unknown rule for choosing C '{rule}'; use one of {', '.join(PROBE_C_RULES)}.")
    Cs, accuracies = (np.array(v, dtype=float) for v in zip(*sorted(curve)))
    best = int(np.argmax(accuracies))
    se = accuracy_standard_error(accuracies[best], n_val)
    chosen = best if rule == "best" else int(np.flatnonzero(accuracies >= accuracies[best] - se - TOLERANCE)[0])
    return CChoice(float(Cs[chosen]), float(Cs[best]), float(accuracies[best]), se)


def _decade(C: float, factor: float, limit: float) -> float:
    """C times a decade, in a tidy form (1e-05, not 1.0000000000000001e-05), not past the limit."""
    step = float(f"{C * factor:.6g}")
    return max(step, limit) if factor < 1 else min(step, limit)


def edge_steps(Cs: Sequence[float], choice: CChoice, limits: tuple[float, float]) -> tuple[float, ...]:
    """The Cs to sweep next: a decade below a chosen C at the lower edge, a decade above a best C at the upper."""
    low, high = limits
    steps = []
    if choice.C == min(Cs) and min(Cs) > low * (1 + TOLERANCE):
        steps.append(_decade(min(Cs), 0.1, low))
    if choice.best_val_C == max(Cs) and max(Cs) < high * (1 - TOLERANCE):
        steps.append(_decade(max(Cs), 10.0, high))
    return tuple(steps)


@dataclass(frozen=True)
class Sweep:
    curve: list[tuple[float, float]]  # (C, validation accuracy), sorted by C, the grid's and the extension's
    choice: CChoice
    extended_Cs: tuple[float, ...]  # the Cs swept past the grid's edges, in the order they were swept


def sweep_C(Cs: Sequence[float], score: Scorer, n_val: int, rule: str = "one-se",
            limits: tuple[float, float] | None = None,
            before_extending: Callable[[int], None] | None = None) -> Sweep:
    """Score the grid, choose, and while the choice sits on an edge, score the next decade out and choose again.

    A grid of one C is a C fixed by the caller, not a sweep, and `limits` None keeps to the grid; either way it is
    never extended. `before_extending(n)` runs before each extension's n new fits (for progress totals).
    """
    curve = dict(zip(map(float, Cs), score(tuple(Cs))))
    extended: list[float] = []
    while True:
        choice = choose_C(list(curve.items()), n_val, rule)
        steps = edge_steps(list(curve), choice, limits) if limits is not None and len(Cs) > 1 else ()
        if not steps:
            return Sweep(sorted(curve.items()), choice, tuple(extended))
        if before_extending is not None:
            before_extending(len(steps))
        curve.update(zip(steps, score(steps)))
        extended += steps

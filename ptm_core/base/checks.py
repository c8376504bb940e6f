"""Validation of numeric settings, shared by the CLI and the engine (and so by the UI).

Every check raises one PTMError naming the setting, the value and the allowed range, before any
work starts: a NaN learning rate must not train, and a bad seed must not surface as a library error.
"""
from __future__ import annotations

import math

from ptm_core.base.errors import PTMError

MAX_SEED = 2**32 - 1  # numpy and sklearn accept seeds in [0, 2**32)
MAX_BATCH = 4096  # beyond this a CPU batch of 224 px images needs more memory than it saves time
MAX_EPOCHS = 1000


def number(name: str, value: float, lo: float | None = None, hi: float | None = None, *,
           lo_open: bool = False) -> float:
    """`value` if it is a finite number in [lo, hi] (or (lo, hi] with `lo_open`), else a PTMError."""
    try:
        value = float(value)
    except (TypeError, ValueError, OverflowError):
        raise PTMError(f"{name} must be a number, got {value!r}.") from None
    low_ok = lo is None or (value > lo if lo_open else value >= lo)
    if not math.isfinite(value) or not low_ok or (hi is not None and value > hi):
        bound = (f"{'above' if lo_open else 'at least'} {lo:g}" if lo is not None else "") + \
                (f"{' and ' if lo is not None else ''}at most {hi:g}" if hi is not None else "")
        raise PTMError(f"{name} must be a finite number{' ' + bound if bound else ''}, got {value:g}.")
    return value


def whole(name: str, value: int, lo: int, hi: int) -> int:
    """`value` if it is a whole number in [lo, hi], else a PTMError."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise PTMError(f"{name} must be a whole number from {lo:,} to {hi:,}, got {value!r}.")
    return value


def seed(name: str, value: int) -> int:
    return whole(name, value, 0, MAX_SEED)


def image_size(value: int) -> int:
    return whole("--image-size", value, 16, 1024)

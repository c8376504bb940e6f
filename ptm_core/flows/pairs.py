"""How sure the lab's Compare tab can be: each method's Wilson interval, and McNemar's exact test between methods
scored on the same test images.

A lab run records, besides its accuracy, which test images it was scored on (`test_split`, a hash of the test
indices, and `n_test`) and which of them it got right (`test_correct`, one "0"/"1" per test image in index order).
Every lab method splits the same labels with the same seed and test size (probes.linear.split_indices), so the
methods on one source share their test images, also at another image size; the hash checks it rather than assumes it.
Runs recorded before these fields existed carry no per-image results: they get an interval (from n_test, where
known) but no paired test, and the pair says why.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ptm_core.base.errors import PTMError
from ptm_core.probes.linear import ProbeResult
from ptm_core.base.stats import PairedTest, accuracy_interval, mcnemar_sample_size, paired_test


def per_image(test_indices: np.ndarray, predictions: np.ndarray, labels: np.ndarray, prefix: str = "") -> dict:
    """The metrics that let a run be paired with another: its test images and which of them it got right."""
    order = np.argsort(np.asarray(test_indices), kind="stable")
    indices = np.asarray(test_indices, dtype=np.int64)[order]
    right = (np.asarray(predictions)[order] == np.asarray(labels)[indices])
    return {f"{prefix}n_test": int(len(indices)),
            f"{prefix}test_split": hashlib.sha256(indices.tobytes()).hexdigest()[:16],
            f"{prefix}test_correct": "".join("1" if r else "0" for r in right)}


def interval(accuracy: float, n_test: int | None) -> tuple[float, float] | None:
    """Wilson's 95 % interval of an accuracy on n_test images; None when n_test is unknown."""
    if n_test is None or n_test != n_test or n_test <= 0:  # None, NaN (a pandas gap) or nothing tested
        return None
    return accuracy_interval(accuracy, int(n_test))


def interval_text(low: float, high: float) -> str:
    """"92.0–94.8%": an interval in its accuracy's own format (the lab's bars, tables and metrics)."""
    return f"{low * 100:.1f}–{high:.1%}"


def probes_test(labels: np.ndarray, a: ProbeResult, b: ProbeResult) -> PairedTest:
    """McNemar's test of two probes of the same labelled images with one seed, hence one test split (checked)."""
    if not np.array_equal(a.test_indices, b.test_indices):
        raise PTMError("The two probes were scored on different test images; this is a bug, please report it.")
    return paired_test(labels[a.test_indices], a.predictions, b.predictions)


def images_needed(test: PairedTest) -> int | None:
    """Test images that would tell the two apart (80 % power, Connor 1987), if the discordant rates seen here held;
    None when they split the discordant images evenly (nothing to tell apart)."""
    return mcnemar_sample_size(test.a_only_right, test.b_only_right, test.n_test)


@dataclass(frozen=True)
class MethodPair:
    """The best method (a) against another (b): McNemar's test on their shared test images, or why there is none
    ("no per-image results": a run recorded before they were kept; "other test images": not the same split)."""

    a: str
    b: str
    test: PairedTest | None = None
    missing: str | None = None


def _correct(row: dict) -> np.ndarray | None:
    text = row.get("test_correct")
    return None if not isinstance(text, str) or not text else np.frombuffer(text.encode(), dtype=np.uint8) == ord("1")


def pair(a: dict, b: dict) -> MethodPair:
    """Two compare rows (dicts with method, test_split, test_correct) as a paired test, or why it cannot be one."""
    right_a, right_b = _correct(a), _correct(b)
    if right_a is None or right_b is None:
        return MethodPair(a["method"], b["method"], missing="no per-image results")
    if a.get("test_split") != b.get("test_split") or len(right_a) != len(right_b):
        return MethodPair(a["method"], b["method"], missing="other test images")
    truth = np.ones(len(right_a), dtype=bool)  # each image's "right" against "right": a prediction is its correctness
    return MethodPair(a["method"], b["method"], test=paired_test(truth, right_a, right_b))


def best_pairs(rows: list[dict]) -> list[MethodPair]:
    """The most accurate method against each other method that ran (rows: one per method, as compare_frame's)."""
    if len(rows) < 2:
        return []
    best = max(rows, key=lambda row: row["test accuracy"])
    return [pair(best, row) for row in rows if row is not best]

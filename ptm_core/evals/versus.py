"""Two feature sets of the same images, probed the same way and compared image by image (McNemar's exact test).

The same split (it depends only on the labels and the seed) and the same C sweep for both, so that the one thing
that differs is the features; the verdict is a tie unless the discordant images say otherwise at p < 0.05.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ptm_core.base.configs import ProbeConfig
from ptm_core.base.errors import PTMError
from ptm_core.base.stats import PairedTest, paired_test
from ptm_core.features.featureset import FeatureSet
from ptm_core.probes.linear import ProbeResult, run_linear_probe


@dataclass(frozen=True)
class VersusResult:
    a: ProbeResult
    b: ProbeResult
    test: PairedTest
    n_shared: int  # images in both sets (the rows compared)

    def summary(self) -> dict:
        def side(result: ProbeResult) -> dict:
            return {"test_accuracy": result.test_accuracy, "test_accuracy_ci95": list(result.test_accuracy_ci95),
                    "best_C": result.best_C}

        return {"a": side(self.a), "b": side(self.b), "n_test": self.test.n_test, "n_shared": self.n_shared,
                "a_only_right": self.test.a_only_right, "b_only_right": self.test.b_only_right,
                "p_value": self.test.p_value, "verdict": self.test.verdict}


def shared_rows(a: FeatureSet, b: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the images both sets hold, in a's order, matched by id; their labels must agree."""
    where_b = {image_id: row for row, image_id in enumerate(b.ids)}
    rows_a = np.array([row for row, image_id in enumerate(a.ids) if image_id in where_b], dtype=np.int64)
    if len(rows_a) == 0:
        raise PTMError("The two feature sets share no image (no id in common): compare features of the same "
                       "images, e.g. two backbones on one dataset.")
    rows_b = np.array([where_b[a.ids[row]] for row in rows_a], dtype=np.int64)
    names_a = [a.class_names[i] for i in a.labels[rows_a]] if a.class_names else a.labels[rows_a].tolist()
    names_b = [b.class_names[i] for i in b.labels[rows_b]] if b.class_names else b.labels[rows_b].tolist()
    disagree = sum(x != y for x, y in zip(names_a, names_b))
    if disagree:
        raise PTMError(f"The two feature sets label {disagree:,} of their {len(rows_a):,} shared images "
                       f"differently; they must describe the same labelled images.")
    return rows_a, rows_b


def probe_versus(a: FeatureSet, b: FeatureSet, config: ProbeConfig = ProbeConfig(), device: str = "auto") -> VersusResult:
    """The same linear probe (split, seed, C sweep) on both sets' shared images, and McNemar's test of the two."""
    rows_a, rows_b = shared_rows(a, b)
    labels = a.labels[rows_a]
    first = run_linear_probe(a.features[rows_a], labels, config, device=device)
    second = run_linear_probe(b.features[rows_b], labels, config, device=device)
    if not np.array_equal(first.test_indices, second.test_indices):  # the split depends on labels and seed only
        raise PTMError("The two probes were scored on different test images; this is a bug, please report it.")
    test = paired_test(labels[first.test_indices], first.predictions, second.predictions)
    return VersusResult(first, second, test, len(rows_a))

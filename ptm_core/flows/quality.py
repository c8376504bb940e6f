"""Data quality for the explorer: the report on the probe's own split, the issue of each image for the map, the
finds as one table (the CSV export), and the probe's count of test images with a near-duplicate in train."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ptm_core.base.quality import QualityConfig
from ptm_core.data.types import Dataset
from ptm_core.evals.quality import QualityReport, duplicated_in_train, quality
from ptm_core.features.featureset import FeatureSet
from ptm_core.probes.linear import ProbeResult

# Each image's issue on the map; one that has several shows the first of these.
ISSUE_KINDS = ("label issue", "near-duplicate", "outlier", "none")


def quality_report(fs: FeatureSet, probe: ProbeResult | None, config: QualityConfig = QualityConfig(),
                   dataset: Dataset | None = None) -> QualityReport:
    """The quality report of `fs`, its leaks against the probe's test split (the probe's own, when given), its
    near-duplicates confirmed on the pixels of `dataset` (default: the dataset the features name)."""
    return quality(fs, config, None if probe is None else probe.test_indices, dataset)


def issue_kinds(report: QualityReport, n: int) -> np.ndarray:
    """One of ISSUE_KINDS per image (strings), for colouring the map."""
    kinds = np.full(n, ISSUE_KINDS[-1], dtype=object)
    for item in report.outliers:
        kinds[item["row"]] = "outlier"
    for pair in report.near_duplicates:
        kinds[pair["rows"]] = "near-duplicate"
    for issue in report.label_issues:
        kinds[issue["row"]] = "label issue"
    return kinds


def quality_frame(report: QualityReport) -> pd.DataFrame:
    """Every find, one row each: kind, id, other id (pairs), given and suggested label, score (or similarity), and
    for near-duplicates how they were found and their thumbnails' correlation."""
    rows = [{"kind": "label issue", "id": i["id"], "other_id": "", "given": i["given"], "suggested": i["suggested"],
             "score": i["score"]} for i in report.label_issues]
    rows += [{"kind": "near-duplicate", "id": p["ids"][0], "other_id": p["ids"][1], "given": "", "suggested": "",
              "score": p["similarity"], "found_by": p["found_by"], "pixel_correlation": p["correlation"]}
             for p in report.near_duplicates]
    rows += [{"kind": "leak", "id": leak["test_id"], "other_id": leak["train_id"], "given": "", "suggested": "",
              "score": leak["similarity"]} for leak in report.leaks]
    rows += [{"kind": "outlier", "id": o["id"], "other_id": "", "given": "", "suggested": "", "score": o["score"]}
             for o in report.outliers]
    return pd.DataFrame(rows, columns=["kind", "id", "other_id", "given", "suggested", "score", "found_by",
                                       "pixel_correlation"])


def train_duplicates(fs: FeatureSet, probe: ProbeResult,
                     threshold: float = QualityConfig().duplicate_similarity) -> tuple[int, int]:
    """(test images with a near-duplicate in train, test images) on the probe's split."""
    return duplicated_in_train(fs.features, probe.test_indices, threshold), len(probe.test_indices)

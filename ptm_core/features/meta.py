"""What a features result says about the run that asked for it, as opposed to the run that computed it.

The cache key is what determines the numbers (backbone, weights, images' content and labels, preprocessing,
precision), so two folders holding the same usable images share one entry even when their broken files
differ. The features may be shared; the dataset's name and its skip list may not: those are this run's.
"""
from __future__ import annotations

from ptm_core.data import Dataset

MAX_LISTED = 200  # skip entries kept in meta; n_skipped counts them all
UNKNOWN_DECODE = "could not be decoded when these features were computed"


def dataset_fields(dataset: Dataset, spec: str, failed_at_decode: list[tuple[str, str]]) -> dict:
    """The meta fields naming the dataset of this run and everything it could not use."""
    skipped = list(dataset.skipped) + list(failed_at_decode)
    return {"dataset": spec, "dataset_fingerprint": dataset.fingerprint,
            "skipped": [list(entry) for entry in skipped[:MAX_LISTED]], "n_skipped": len(skipped),
            # Kept apart from `skipped`, so a later run of another folder with these images can tell them
            # from the files that folder itself could not use.
            "failed_at_decode": [list(entry) for entry in failed_at_decode]}


def as_this_run(meta: dict, cached_ids: list[str], dataset: Dataset, spec: str, backbone: str) -> dict:
    """A cached entry's meta with the dataset, its skip list and the backbone name of the run asking for it.

    Images the cached rows lack failed to decode when the entry was computed (the same content fails the same
    way); their reasons come from the entry, which older entries kept only in `skipped`.
    """
    have = set(cached_ids)
    known = {str(p): str(r) for p, r in [*(meta.get("skipped") or []), *(meta.get("failed_at_decode") or [])]}
    failed = [(i, known.get(i, UNKNOWN_DECODE)) for i in dataset.ids if i not in have]
    return dict(meta, backbone=backbone, **dataset_fields(dataset, spec, failed))

"""Near-duplicates: features propose, pixels confirm.

Feature similarity alone cannot tell a copy shifted by a pixel from a different image of the same class (measured in
ptm_core.base.quality: the shifted copy and a natural neighbour reach the same cosine). So a pair is a near-duplicate
when its features are very close (cosine >= `duplicate_similarity`, no pixels needed), or when they are merely close
(cosine >= `candidate_similarity`) and the two pictures agree: on small greyscale thumbnails, the best Pearson
correlation over integer shifts of up to `max_shift` px (normalised cross-correlation on the overlap, Lewis, "Fast
Normalized Cross-Correlation", Vision Interface 1995) reaches `pixel_correlation`.

Thumbnails come through `Dataset.image`, the bounded decoding every image in the app takes (pixel and aspect limits
of ptm_core.data.imaging). Where the images cannot be had (a features file whose dataset does not load here), only
the feature rule runs, and the report says so.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from ptm_core.base.errors import PTMError
from ptm_core.base.messages import M_
from ptm_core.base.quality import QualityConfig
from ptm_core.data.registry import load_dataset
from ptm_core.data.types import Dataset

CHUNK = 2048  # pairs correlated at a time: bounds memory to ~CHUNK x thumbnail pixels x a few float32 arrays


def dataset_of(meta: dict) -> tuple[Dataset | None, str | None]:
    """The dataset a feature set's meta names (`dataset`: the spec it was extracted from), or None and why not."""
    from ptm_core.base.configs import DatasetConfig

    spec = meta.get("dataset")
    if not spec:
        return None, M_("these features do not name their dataset")
    try:
        return load_dataset(DatasetConfig(str(spec))), None
    except PTMError as exc:
        return None, M_("their dataset {spec} does not load here ({reason})", spec=repr(spec), reason=str(exc))


def thumbnail(image: Image.Image, size: int) -> np.ndarray:
    """A size x size greyscale float32 thumbnail, aspect kept: scaled to fit, centred, the rest filled with the
    image's own mean grey (so the padding adds no edge of its own to the correlation)."""
    grey = image.convert("L")
    scale = size / max(grey.width, grey.height)
    w, h = max(1, round(grey.width * scale)), max(1, round(grey.height * scale))
    pixels = np.asarray(grey.resize((w, h), Image.BILINEAR), dtype=np.float32)
    canvas = np.full((size, size), pixels.mean(), dtype=np.float32)
    top, left = (size - h) // 2, (size - w) // 2
    canvas[top:top + h, left:left + w] = pixels
    return canvas


def thumbnails(dataset: Dataset, ids: list[str], rows: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(len(rows) x size x size thumbnails of the images with these feature ids, which could be read)."""
    positions = {item_id: i for i, item_id in enumerate(dataset.ids)}
    out = np.zeros((len(rows), size, size), dtype=np.float32)
    ok = np.zeros(len(rows), dtype=bool)
    for j, row in enumerate(np.asarray(rows, dtype=int).tolist()):
        index = positions.get(ids[row])
        if index is None:
            continue
        try:
            out[j], ok[j] = thumbnail(dataset.image(index, shorter_side=size), size), True
        except PTMError:  # unreadable now (ItemUnreadable) or beyond the pixel limits: left to the feature rule
            continue
    return out, ok


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation of (m x p) arrays; 0 where either row is constant."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denominator = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return np.where(denominator > 0, (a * b).sum(axis=1) / np.where(denominator > 0, denominator, 1.0), 0.0)


def shifted_correlation(a: np.ndarray, b: np.ndarray, max_shift: int) -> np.ndarray:
    """For each pair (a[i], b[i]) of size x size thumbnails, the highest Pearson correlation of their overlap over
    integer shifts of b by up to `max_shift` px each way ((2 max_shift + 1)^2 shifts), vectorised over pairs."""
    m, size, _ = a.shape
    best = np.full(m, -1.0)
    for start in range(0, m, CHUNK):
        pa, pb = a[start:start + CHUNK], b[start:start + CHUNK]
        for dy in range(-max_shift, max_shift + 1):
            for dx in range(-max_shift, max_shift + 1):
                ya, yb = slice(max(dy, 0), size + min(dy, 0)), slice(max(-dy, 0), size + min(-dy, 0))
                xa, xb = slice(max(dx, 0), size + min(dx, 0)), slice(max(-dx, 0), size + min(-dx, 0))
                r = _pearson(pa[:, ya, xa].reshape(len(pa), -1), pb[:, yb, xb].reshape(len(pb), -1))
                best[start:start + CHUNK] = np.maximum(best[start:start + CHUNK], r)
    return best


def pair_correlations(dataset: Dataset, ids: list[str], pairs: np.ndarray, config: QualityConfig) -> np.ndarray:
    """The shifted correlation of each (row a, row b) pair's thumbnails; NaN where either image could not be read.
    Each image is decoded once, however many pairs it is in."""
    rows, inverse = np.unique(pairs, return_inverse=True)
    thumbs, ok = thumbnails(dataset, ids, rows, config.thumbnail_size)
    inverse = inverse.reshape(pairs.shape)
    r = shifted_correlation(thumbs[inverse[:, 0]], thumbs[inverse[:, 1]], config.max_shift)
    return np.where(ok[inverse[:, 0]] & ok[inverse[:, 1]], r, np.nan)


def graph_pairs(indices: np.ndarray, similarity: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(p x 2 row pairs, a < b, each once; their cosine) on the k-NN graph at or above `threshold`."""
    rows, cols = np.nonzero(similarity >= threshold)
    a, b = rows, indices[rows, cols]
    pairs = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1).astype(np.int64)
    sims = similarity[rows, cols]
    if not len(pairs):
        return pairs.reshape(0, 2), sims
    unique, first = np.unique(pairs, axis=0, return_index=True)  # a symmetric pair appears twice, same cosine
    return unique, sims[first]


def near_duplicates(indices: np.ndarray, similarity: np.ndarray, ids: list[str], config: QualityConfig,
                    dataset: Dataset | None) -> list[dict]:
    """Near-duplicate pairs, most similar (by features) first, each saying how it was found: "features" (cosine >=
    `duplicate_similarity`) or "features + pixels" (a candidate whose thumbnails correlate >= `pixel_correlation`),
    with its `correlation` where pixels were compared. Without `dataset`, the feature rule alone."""
    strict = config.duplicate_similarity
    loose = min(config.candidate_similarity, strict) if dataset is not None else strict
    pairs, sims = graph_pairs(indices, similarity, loose)
    correlation = np.full(len(pairs), np.nan)
    if dataset is not None and len(pairs):
        correlation = pair_correlations(dataset, ids, pairs, config)
    keep = (sims >= strict) | (correlation >= config.pixel_correlation)  # NaN compares False: features only
    order = np.lexsort((pairs[:, 1], pairs[:, 0], -sims))
    found = []
    for i in order[keep[order]].tolist():
        a, b = int(pairs[i, 0]), int(pairs[i, 1])
        r = None if np.isnan(correlation[i]) else float(correlation[i])
        found.append({"rows": [a, b], "ids": [ids[a], ids[b]], "similarity": float(sims[i]), "correlation": r,
                      "found_by": "features" if sims[i] >= strict else "features + pixels"})
    return found

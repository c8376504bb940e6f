"""Representation similarity: centred kernel alignment (CKA) between two feature sets of the same images.

Linear CKA (Kornblith, Norouzi, Lee & Hinton, "Similarity of Neural Network Representations Revisited", ICML 2019,
eq. 5 on column-centred features): ||Yᵀ X||_F² / (||Xᵀ X||_F ||Yᵀ Y||_F), which equals the textbook
HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with HSIC(K, L) = tr(K H L H) / (n - 1)², K = X Xᵀ, L = Y Yᵀ and H the
centring matrix. RBF CKA uses k(x, x') = exp(-||x - x'||² / (2 σ²)) with σ a fraction of the median pairwise distance
(Kornblith et al. §6.1 report 0.2, 0.4 and 0.8; 0.8 is the default here, the widest of them).

Sets too big for n x n Gram matrices use the minibatch estimator of Nguyen, Raghu & Kornblith ("Do Wide and Deep
Networks Learn the Same Things?", ICLR 2021, eq. 3): the unbiased HSIC of Song et al. (JMLR 2012) summed over
minibatches of a seeded permutation, CKA = Σ HSIC₁(K_i, L_i) / sqrt(Σ HSIC₁(K_i, K_i) Σ HSIC₁(L_i, L_i)).
Everything is computed in float64. Plain numpy (no sklearn or scipy estimator computes CKA or unbiased HSIC).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ptm_core.base.errors import PTMError

KERNELS = ("linear", "rbf")
RBF_SIGMA_FRACTION = 0.8  # of the median pairwise distance (Kornblith et al. 2019, §6.1: 0.2, 0.4, 0.8)
MIN_ROWS = 10  # fewer matched rows say nothing about a representation
EXACT_MAX_ROWS = 10_000  # above this, n x n float64 Gram matrices (800 MB each) give way to minibatches
BATCH_SIZE = 2_000
GRAM_BUDGET_BYTES = 512 * 2**20  # the layer matrix keeps every layer's n x n Gram: above this, minibatches


@dataclass(frozen=True)
class CKAResult:
    """One CKA value and how it was made: the kernel, the rows it used and the estimator."""

    cka: float
    kernel: str
    n: int  # rows used (the ids both sets share)
    n_a: int
    n_b: int
    method: str  # "exact" or "minibatch"
    batch_size: int | None = None
    n_batches: int | None = None
    sigma_fraction: float | None = None  # RBF only

    @property
    def matched(self) -> str:
        return f"{self.n:,} of {self.n_a:,} (A) and {self.n_b:,} (B) rows matched by id"

    @property
    def estimator(self) -> str:
        if self.method == "minibatch":
            return (f"minibatch, batch {self.batch_size:,}, {self.n_batches} batches (unbiased HSIC, "
                    f"Nguyen et al. 2021)")
        return "exact (centred Gram matrices)"

    def to_dict(self) -> dict:
        return {f"{self.kernel}_cka": self.cka, **asdict(self), "matched": self.matched, "estimator": self.estimator}


def check_features(x: np.ndarray, what: str) -> np.ndarray:
    """A 2-D finite array of at least two rows, as float64; a PTMError naming what is wrong otherwise."""
    x = np.asarray(x)
    if x.ndim != 2 or not x.size or not np.issubdtype(x.dtype, np.number):
        raise PTMError(f"{what}: CKA needs a 2-D array of numbers (rows x dims), got shape {x.shape}.")
    if len(x) < 2:
        raise PTMError(f"{what}: a single row has no similarity structure; CKA needs at least {MIN_ROWS} rows.")
    if not np.isfinite(x).all():
        raise PTMError(f"{what}: the features contain NaN or infinite values; CKA needs finite numbers.")
    return x.astype(np.float64, copy=False)


def match_ids(ids_a: list[str], ids_b: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Row indices into A and B of the ids both hold, in A's order; refuses repeated ids and under MIN_ROWS shared."""
    for side, ids in (("A", ids_a), ("B", ids_b)):
        if len(set(ids)) != len(ids):
            raise PTMError(f"Feature set {side} repeats an id; rows are matched by id, so each must be unique.")
    where_b = {image_id: row for row, image_id in enumerate(ids_b)}
    rows_a = np.array([row for row, image_id in enumerate(ids_a) if image_id in where_b], dtype=np.int64)
    rows_b = np.array([where_b[ids_a[row]] for row in rows_a], dtype=np.int64)
    if len(rows_a) < MIN_ROWS:
        raise PTMError(f"Only {len(rows_a)} of {len(ids_a):,} (A) and {len(ids_b):,} (B) rows share an id; CKA needs "
                       f"at least {MIN_ROWS} images in both sets.")
    return rows_a, rows_b


def centred_gram(x: np.ndarray, kernel: str = "linear", sigma_fraction: float = RBF_SIGMA_FRACTION) -> np.ndarray:
    """H K H for the kernel's Gram matrix K of the rows of x (float64)."""
    x = x.astype(np.float64, copy=False)
    if kernel == "linear":
        xc = x - x.mean(axis=0)
        return xc @ xc.T  # centring the features centres the linear Gram matrix
    if kernel != "rbf":
        raise PTMError(f"Unknown CKA kernel {kernel!r}; one of {', '.join(KERNELS)}.")
    k = rbf_gram(x, sigma_fraction)
    means = k.mean(axis=0)
    return k - means[:, None] - means[None, :] + means.mean()


def rbf_gram(x: np.ndarray, sigma_fraction: float = RBF_SIGMA_FRACTION) -> np.ndarray:
    """exp(-d² / (2 σ²)) with σ = sigma_fraction x the median distance between distinct rows (Kornblith et al.)."""
    gram = x @ x.T
    norms = np.diag(gram)
    squared = np.maximum(norms[:, None] + norms[None, :] - 2 * gram, 0.0)
    median = float(np.median(np.sqrt(squared[np.triu_indices(len(x), 1)])))  # over distinct pairs
    if median <= 0:
        raise PTMError("Every row is the same point: the RBF kernel's bandwidth (median distance) is 0.")
    return np.exp(-squared / (2 * (sigma_fraction * median) ** 2))


def cka_from_grams(kc: np.ndarray, lc: np.ndarray) -> float:
    """CKA of two centred Gram matrices: <Kc, Lc>_F / (||Kc||_F ||Lc||_F); 0 when one of them is constant."""
    denominator = np.linalg.norm(kc) * np.linalg.norm(lc)
    return float(np.vdot(kc, lc) / denominator) if denominator > 0 else 0.0


def unbiased_hsic(k: np.ndarray, l: np.ndarray) -> float:
    """Song et al. (2012), eq. 5, on uncentred Gram matrices of n ≥ 4 rows (their diagonals are set to 0 here)."""
    n = len(k)
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0.0)
    np.fill_diagonal(l, 0.0)
    ones_k, ones_l = k.sum(axis=0), l.sum(axis=0)
    trace = np.vdot(k, l)
    return float((trace + ones_k.sum() * ones_l.sum() / ((n - 1) * (n - 2)) - 2 * ones_k @ ones_l / (n - 2))
                 / (n * (n - 3)))


def _gram(x: np.ndarray, kernel: str, sigma_fraction: float) -> np.ndarray:
    """The uncentred Gram matrix (the unbiased HSIC centres by itself); an RBF one with its own batch's median."""
    return x @ x.T if kernel == "linear" else rbf_gram(x, sigma_fraction)


def batches(n: int, batch_size: int, seed: int) -> list[np.ndarray]:
    """A seeded permutation of n rows cut into near-equal batches of about batch_size (each at least 4 rows)."""
    count = max(1, int(round(n / batch_size)))
    return np.array_split(np.random.default_rng(seed).permutation(n), count)


def minibatch_cka(x: np.ndarray, y: np.ndarray, kernel: str = "linear", batch_size: int = BATCH_SIZE,
                  sigma_fraction: float = RBF_SIGMA_FRACTION, seed: int = 0) -> tuple[float, int]:
    """(CKA, number of batches) by the minibatch estimator of Nguyen et al. (2021), eq. 3."""
    xy, xx, yy = 0.0, 0.0, 0.0
    parts = batches(len(x), batch_size, seed)
    for rows in parts:
        k = _gram(x[rows].astype(np.float64), kernel, sigma_fraction)
        l = _gram(y[rows].astype(np.float64), kernel, sigma_fraction)
        xy, xx, yy = xy + unbiased_hsic(k, l), xx + unbiased_hsic(k, k), yy + unbiased_hsic(l, l)
    return (float(xy / np.sqrt(xx * yy)) if xx > 0 and yy > 0 else 0.0), len(parts)


def cka(x: np.ndarray, y: np.ndarray, kernel: str = "linear", *, sigma_fraction: float = RBF_SIGMA_FRACTION,
        exact_max_rows: int = EXACT_MAX_ROWS, batch_size: int = BATCH_SIZE, seed: int = 0) -> CKAResult:
    """CKA of two feature arrays whose rows are the same images in the same order.

    Exact up to `exact_max_rows` rows; above, the minibatch estimator (seeded batches), and the result says so.
    """
    if kernel not in KERNELS:
        raise PTMError(f"Unknown CKA kernel {kernel!r}; one of {', '.join(KERNELS)}.")
    if not 0 < sigma_fraction < np.inf:
        raise PTMError(f"The RBF bandwidth fraction must be above 0, got {sigma_fraction}.")
    if batch_size < MIN_ROWS:
        raise PTMError(f"A minibatch needs at least {MIN_ROWS} rows, got a batch size of {batch_size}.")
    x, y = check_features(x, "A"), check_features(y, "B")
    if len(x) != len(y):
        raise PTMError(f"A has {len(x):,} rows and B {len(y):,}; CKA compares the same images row by row.")
    if len(x) < MIN_ROWS:
        raise PTMError(f"CKA needs at least {MIN_ROWS} images, got {len(x)}.")
    fraction = sigma_fraction if kernel == "rbf" else None
    if len(x) > exact_max_rows:
        size = min(batch_size, exact_max_rows)
        value, count = minibatch_cka(x, y, kernel, size, sigma_fraction, seed)
        return CKAResult(value, kernel, len(x), len(x), len(y), "minibatch", size, count, fraction)
    if kernel == "linear":  # the feature-space form: d x d products, no n x n matrix
        xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
        denominator = np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)
        value = float(np.linalg.norm(yc.T @ xc) ** 2 / denominator) if denominator > 0 else 0.0
    else:
        value = cka_from_grams(centred_gram(x, kernel, sigma_fraction), centred_gram(y, kernel, sigma_fraction))
    return CKAResult(value, kernel, len(x), len(x), len(y), "exact", sigma_fraction=fraction)


def matched_cka(a, b, kernel: str = "linear", **options) -> CKAResult:
    """CKA of two FeatureSets on the rows whose ids both hold; the result counts the matched and the total rows."""
    check_features(a.features, "A")
    check_features(b.features, "B")
    rows_a, rows_b = match_ids(list(a.ids), list(b.ids))
    result = cka(a.features[rows_a], b.features[rows_b], kernel, **options)
    return CKAResult(**{**asdict(result), "n_a": len(a.ids), "n_b": len(b.ids)})


@dataclass(frozen=True)
class CKAMatrix:
    """Linear CKA between every pair of layers (rows and columns in the layers' order) on the same n images."""

    values: np.ndarray
    names: list[str]
    n: int
    method: str
    batch_size: int | None = None
    n_batches: int | None = None

    def to_dict(self) -> dict:
        return {"values": self.values.tolist(), "names": list(self.names), "n": self.n, "method": self.method,
                "batch_size": self.batch_size, "n_batches": self.n_batches}


def _normalised_grams(layers: list[np.ndarray]) -> np.ndarray:
    """Each layer's centred linear Gram matrix, flattened and scaled to unit Frobenius norm (one row per layer)."""
    grams = np.empty((len(layers), len(layers[0]) ** 2), dtype=np.float64)
    for i, x in enumerate(layers):
        grams[i] = centred_gram(x).ravel()
        norm = np.linalg.norm(grams[i])
        grams[i] /= norm if norm > 0 else 1.0
    return grams


def layer_cka_matrix(layers: list[np.ndarray], names: list[str], *, budget_bytes: int = GRAM_BUDGET_BYTES,
                     batch_size: int = BATCH_SIZE, seed: int = 0) -> CKAMatrix:
    """Linear CKA of every pair of layers: one centred Gram matrix per layer, then one product for all pairs
    (Kornblith et al. 2019). When the Gram matrices would not fit `budget_bytes`, the minibatch estimator."""
    layers = [check_features(x, name) for x, name in zip(layers, names)]
    n = len(layers[0])
    if any(len(x) != n for x in layers):
        raise PTMError("Every layer must hold the same images: their row counts differ.")
    if n < MIN_ROWS:
        raise PTMError(f"CKA needs at least {MIN_ROWS} images, got {n}.")
    if len(layers) * n * n * 8 <= budget_bytes:
        grams = _normalised_grams(layers)
        return CKAMatrix(np.clip(grams @ grams.T, -1.0, 1.0), list(names), n, "exact")
    parts = batches(n, batch_size, seed)
    total = np.zeros((len(layers), len(layers)))
    for rows in parts:
        grams = [x[rows] @ x[rows].T for x in layers]
        total += np.array([[unbiased_hsic(k, l) for l in grams] for k in grams])
    scale = np.sqrt(np.clip(np.diag(total), 1e-300, None))
    return CKAMatrix(total / np.outer(scale, scale), list(names), n, "minibatch", batch_size, len(parts))

"""The settings of the data-quality checks (ptm_core.evals.quality), here so that the CLI's parser and the pages read
their defaults without importing the evaluations (and torch with them)."""
from __future__ import annotations

from dataclasses import dataclass

from ptm_core.base import checks
from ptm_core.base.configs import Keyed


@dataclass(frozen=True)
class QualityConfig(Keyed):
    seed: int = 0  # the folds' shuffle and, without test_indices, the probe's train/test split
    folds: int = 5  # out-of-fold probabilities; fewer when the smallest class has fewer images
    k: int = 10  # neighbours on the cosine k-NN graph (near-duplicates and outlier scores)
    # The logistic regression's inverse regularisation on standardised features: on planted MNIST-5k (RESULTS.md) C = 0.01
    # put 80 % flipped labels in the top 252 issues, C = 0.1 70 %.
    C: float = 0.01
    # Near-duplicates: features propose, pixels confirm (ptm_core.evals.duplicates). Measured on MNIST-5k through the
    # bundled tf_efficientnet_lite0 at 64 px with 50 planted near-copies, half shifted 1 px, half brightness-scaled by
    # 0.9-1.1 (benchmarks/quality_planted.py, RESULTS.md; load average ~3 on 2 cores):
    # - features alone: an image's natural nearest neighbour sits at a median cosine 0.93 (99th percentile 0.974);
    #   86 of the 12.5 M pairs of distinct images reach 0.97, 1,572 reach 0.95, 4,084 reach 0.94. Brightened copies all reach 0.97
    #   (lowest 0.972), 1 px-shifted copies mostly do not (median 0.958, lowest 0.894): the features move with a shift
    #   as much as they differ between two images of a digit, so cosine >= 0.97 alone found 35 of 50 copies (0.70).
    # - pixels: the best Pearson correlation of 32 px greyscale thumbnails over shifts of up to 2 px is >= 0.995 for
    #   every planted copy (shifted: lowest 0.9948; brightened: 1.000), and at most 0.989 for the 19,461 natural pairs
    #   of the k-NN graph at cosine >= 0.90 (median 0.73; the 65 above 0.97 are all but two strokes of "1"), none
    #   of the 26,034 at cosine >= 0.88 reaching 0.99.
    # So: cosine >= duplicate_similarity is a near-duplicate as before (nothing found then is lost); a pair at cosine
    # >= candidate_similarity (just under the lowest shifted copy's 0.894) is one when its thumbnails correlate >=
    # pixel_correlation (between 0.989 and 0.995). Result: all 50 copies found, no pair of distinct images added to
    # the 86 the feature rule lists; the pixel check takes ~2 s for the 26,034 candidates.
    duplicate_similarity: float = 0.97
    candidate_similarity: float = 0.88
    pixel_correlation: float = 0.99
    max_shift: int = 2  # px of the thumbnail each way (a 1 px shift at 28 px is 1.14 px at 32)
    thumbnail_size: int = 32  # px, the longer side of the greyscale thumbnails compared
    max_pairs: int = 1000  # near-duplicate pairs listed at most (features of random weights put everything close)
    outlier_share: float = 0.01  # the share of images listed as outliers (at least one)
    max_iter: int = 1000

    def check(self) -> "QualityConfig":
        checks.seed("seed", self.seed)
        checks.whole("folds", self.folds, 2, 100)
        checks.whole("k", self.k, 1, 1000)
        checks.number("C", self.C, 0, None, lo_open=True)
        checks.number("duplicate similarity", self.duplicate_similarity, -1, 1)
        checks.number("candidate similarity", self.candidate_similarity, -1, 1)
        checks.number("pixel correlation", self.pixel_correlation, -1, 1)
        checks.whole("max shift", self.max_shift, 0, 8)
        checks.whole("thumbnail size", self.thumbnail_size, 8, 128)
        checks.whole("max pairs", self.max_pairs, 1, 10**7)
        checks.number("outlier share", self.outlier_share, 0, 1, lo_open=True)
        return self

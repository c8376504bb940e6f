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
    # Cosine similarity at or above which two images are near-duplicates. Measured on MNIST-5k through the bundled
    # tf_efficientnet_lite0 at 64 px (benchmarks/quality_planted.py, RESULTS.md): an image's natural nearest neighbour
    # sits at a median 0.93 (99th percentile 0.974); 86 of the 12.5 M pairs of distinct images reach 0.97, 1,572 reach
    # 0.95, 4,084 reach 0.94. Copies with their brightness changed by up to 10 % all reach 0.97 (lowest 0.972); copies
    # shifted by 1 px mostly do not (median 0.958): these features move that much with a shift, so no threshold
    # finds shifted copies without also listing thousands of merely similar digits.
    duplicate_similarity: float = 0.97
    max_pairs: int = 1000  # near-duplicate pairs listed at most (features of random weights put everything close)
    outlier_share: float = 0.01  # the share of images listed as outliers (at least one)
    max_iter: int = 1000

    def check(self) -> "QualityConfig":
        checks.seed("seed", self.seed)
        checks.whole("folds", self.folds, 2, 100)
        checks.whole("k", self.k, 1, 1000)
        checks.number("C", self.C, 0, None, lo_open=True)
        checks.number("duplicate similarity", self.duplicate_similarity, -1, 1)
        checks.whole("max pairs", self.max_pairs, 1, 10**7)
        checks.number("outlier share", self.outlier_share, 0, 1, lo_open=True)
        return self

"""The answer forming while features are still being extracted: a probe and a PCA map of the images done so far.

An extraction visits the images in a seeded random order (`extraction_order`), so the rows done at any
moment are a random sample of the whole set, every class in about its share, and a probe on them is an
honest early estimate. Previews cost time the extraction would otherwise have: they run every few
seconds and take at most `BUDGET` of the time since the last one (but come at least every `MAX_GAP_S`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from sklearn.decomposition import PCA

from ptm_core.base.configs import ProbeConfig
from ptm_core.base.errors import PTMError
from ptm_core.probes.linear import run_linear_probe
from ptm_core.maps.projection import check_degenerate

FIRST_S = 1.0  # seconds into the extraction before the first preview: a few hundred images at 128 px
EVERY_S = 3.0  # then at most this often ...
SOONER_S = 0.5  # ... or this often while too few images of some class have been seen for a probe
BUDGET = 0.1  # ... and never more than this share of the time between two previews ...
MAX_GAP_S = 10.0  # ... unless that would leave the preview on screen older than this
# A preview looks at a seeded sample of at most this many of the rows done: its probe's accuracy is as good an
# estimate, its cost stops growing (4,600 rows took 1.8 s here, 2,000 about 0.6 s), and the map it sends to the
# browser every second stays light.
MAX_ROWS = 2_000
MIN_PER_CLASS = 5  # images of the rarest class before the probe's stratified splits make sense
# A short sweep with fewer iterations: a preview has a few hundred images and must cost well under a second.
PREVIEW_PROBE = dict(Cs=(0.01, 0.1, 1.0), max_iter=200)
ORDER_SEED = 0


def extraction_order(n: int) -> np.ndarray:
    """The order an extraction visits n images in: a seeded permutation (a folder's files come sorted by class,
    so in file order the first images done would all be of one class)."""
    return np.random.default_rng(ORDER_SEED).permutation(n)


@dataclass(frozen=True)
class Preview:
    """What the images done so far say; `accuracy` is None until the rarest class has enough images."""

    n_done: int
    n_total: int
    coords: np.ndarray  # PCA of the features so far (of a sample of MAX_ROWS of them beyond that), 2 columns
    labels: np.ndarray  # the class index of each row of `coords`
    class_names: list[str]
    accuracy: float | None
    n_test: int
    best_C: float | None
    elapsed: float  # seconds into the extraction when these rows were done
    seconds: float  # what computing this preview took


def summarise(features: np.ndarray, labels: np.ndarray, class_names: list[str], n_total: int, seed: int = 0,
              elapsed: float = 0.0) -> Preview:
    """A probe (stratified 20 % test split of these rows, short C sweep) and a PCA map of the rows done so far,
    or of a seeded sample of MAX_ROWS of them."""
    started, n_done = time.perf_counter(), len(features)
    if len(features) > MAX_ROWS:
        keep = np.sort(np.random.default_rng(seed).choice(len(features), MAX_ROWS, replace=False))
        features, labels = features[keep], labels[keep]
    coords = _pca_map(features, seed)
    accuracy, n_test, best_C = None, 0, None
    counts = np.bincount(labels)
    if len(counts[counts > 0]) >= 2 and counts[counts > 0].min() >= MIN_PER_CLASS:
        try:
            probe = run_linear_probe(features, labels, ProbeConfig(seed=seed, **PREVIEW_PROBE), device="cpu")
            accuracy, n_test, best_C = probe.test_accuracy, probe.n_test, probe.best_C
        except PTMError:  # too few rows for its splits yet: the map alone
            pass
    return Preview(n_done, n_total, coords, labels.copy(), list(class_names), accuracy, n_test, best_C,
                   elapsed, time.perf_counter() - started)


def _pca_map(features: np.ndarray, seed: int) -> np.ndarray:
    """The preview's 2-D PCA, or no points (0 x 2) when these rows cannot make a map yet (too few different
    ones, e.g. every image of a class identical; non-finite values): the preview then shows the probe alone."""
    try:
        check_degenerate(features, 2)
    except PTMError:
        return np.empty((0, 2), np.float32)
    return PCA(n_components=2, random_state=seed).fit_transform(features).astype(np.float32)


class ProgressivePreview:
    """Decides when a preview is due and hands each one to `publish` (e.g. a job's `ctx.preview`)."""

    def __init__(self, publish: Callable[[Preview], None], seed: int = 0, first_s: float | None = None,
                 every_s: float | None = None, budget: float | None = None):
        self.publish = publish
        self.seed = seed
        self.first_s = first_s
        self.every_s = every_s
        self.budget = budget
        self._started: float | None = None
        self._next = 0.0

    def start(self) -> None:
        self._started = time.perf_counter()
        self._next = self._started + (FIRST_S if self.first_s is None else self.first_s)

    def due(self) -> bool:
        if self._started is None:
            self.start()
        return time.perf_counter() >= self._next

    def __call__(self, features: np.ndarray, labels: np.ndarray, class_names: list[str], n_total: int) -> None:
        if self._started is None:
            self.start()
        preview = summarise(features, labels, class_names, n_total, self.seed, time.perf_counter() - self._started)
        self.publish(preview)
        # Until the rarest class allows a probe, the next look comes sooner: the answer is what the user waits for.
        every = EVERY_S if self.every_s is None else self.every_s
        every = every if preview.accuracy is not None else min(every, SOONER_S)
        budget = BUDGET if self.budget is None else self.budget
        # At most MAX_GAP_S though: a preview slowed by whatever else ran (a warm-up beside it took 4 s) kept
        # the next one 40 s away, and the answer on screen went stale.
        self._next = time.perf_counter() + min(max(every, preview.seconds / budget), MAX_GAP_S)

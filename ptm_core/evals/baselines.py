"""Baselines on the probes' train/test split: raw pixels, and the same backbone with random weights."""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

import numpy as np
from PIL import Image

from ptm_core.base.configs import BackboneConfig, DatasetConfig, ExtractionConfig, ProbeConfig, stable_hash
from ptm_core.data import Dataset, load_dataset
from ptm_core.base.errors import Cancelled
from ptm_core.features.extraction import CancelFn, ProgressFn, extract
from ptm_core.probes.linear import ProbeResult, cached_linear_probe

PIXEL_SIZE = 32  # raw-pixel baseline: images resized to 32 x 32 grey


def pixel_features(dataset: Dataset, size: int = PIXEL_SIZE, grey: bool = True,
                   cancelled: CancelFn | None = None) -> np.ndarray:
    """Each image resized to size x size (grey or RGB), flattened to [0, 1] floats."""
    rows = []
    for i in range(len(dataset)):
        if cancelled is not None and i % 256 == 0 and cancelled():
            raise Cancelled()
        rows.append(pixel_row(dataset.image(i), size, grey))
    return np.stack(rows)


def pixel_row(image: Image.Image, size: int = PIXEL_SIZE, grey: bool = True) -> np.ndarray:
    """One image as the pixel baseline sees it: resized to size x size (grey or RGB), flattened to [0, 1] floats."""
    image = image.convert("L" if grey else "RGB").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32).reshape(-1) / 255.0


def pixel_key(dataset: Dataset, size: int = PIXEL_SIZE, grey: bool = True) -> str:
    """The cache key of a dataset's pixel features (and so of their probe)."""
    return stable_hash(["pixels", dataset.fingerprint, size, grey])


def run_pixel_baseline(dataset_config: DatasetConfig, probe_config: ProbeConfig = ProbeConfig(), size: int = PIXEL_SIZE,
                       grey: bool = True, callback: Callable[[int, int], None] | None = None,
                       cancelled: CancelFn | None = None) -> ProbeResult:
    """Logistic regression (the LinearProbe protocol) on raw pixels: what a backbone has to beat.

    `seconds` is the pixel features' time (computed every run) plus the probe fit's original time.
    """
    dataset = load_dataset(dataset_config)
    started = time.perf_counter()
    features = pixel_features(dataset, size, grey, cancelled)
    feature_seconds = time.perf_counter() - started
    key = pixel_key(dataset, size, grey)
    probe = cached_linear_probe(features, dataset.labels, key, probe_config, callback, cancelled)
    return dataclasses.replace(probe, seconds=feature_seconds + probe.seconds)


def random_weights(backbone_config: BackboneConfig) -> BackboneConfig:
    """The same architecture with seeded random init (BackboneConfig.seed) instead of its weights."""
    return dataclasses.replace(backbone_config, weights="random")


def run_random_weights_baseline(dataset_config: DatasetConfig, backbone_config: BackboneConfig,
                                extraction_config: ExtractionConfig = ExtractionConfig(),
                                probe_config: ProbeConfig = ProbeConfig(), progress: ProgressFn | None = None,
                                cancelled: CancelFn | None = None) -> ProbeResult:
    """The same architecture with random init (BackboneConfig.seed), same extraction and probe.

    Separates what pretraining contributes from what the architecture's inductive bias does alone.
    """
    features = extract(dataset_config, random_weights(backbone_config), extraction_config, progress, cancelled)
    probe = cached_linear_probe(features.features, features.labels, features.key, probe_config, cancelled=cancelled)
    # The compute time behind the number, cached parts included; unknown (None) for caches from before it was kept.
    feature_seconds = features.meta.get("compute_seconds")
    return dataclasses.replace(probe, seconds=None if feature_seconds is None else feature_seconds + probe.seconds,
                               from_cache=probe.from_cache or bool(features.meta.get("from_cache")))


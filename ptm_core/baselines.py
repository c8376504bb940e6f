"""Baselines on the probes' train/test split: raw pixels, and the same backbone with random weights."""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
from PIL import Image

from ptm_core.configs import BackboneConfig, DatasetConfig, ExtractionConfig, ProbeConfig, stable_hash
from ptm_core.data import Dataset, load_dataset
from ptm_core.errors import Cancelled
from ptm_core.extraction import CancelFn, ProgressFn, extract
from ptm_core.probes import ProbeResult, cached_linear_probe


def pixel_features(dataset: Dataset, size: int = 32, grey: bool = True,
                   cancelled: CancelFn | None = None) -> np.ndarray:
    """Each image resized to size x size (grey or RGB), flattened to [0, 1] floats."""
    mode = "L" if grey else "RGB"
    rows = []
    for i in range(len(dataset)):
        if cancelled is not None and i % 256 == 0 and cancelled():
            raise Cancelled()
        image = dataset.image(i).convert(mode).resize((size, size), Image.Resampling.BILINEAR)
        rows.append(np.asarray(image, dtype=np.float32).reshape(-1) / 255.0)
    return np.stack(rows)


def run_pixel_baseline(dataset_config: DatasetConfig, probe_config: ProbeConfig = ProbeConfig(), size: int = 32,
                       grey: bool = True, callback: Callable[[int, int], None] | None = None,
                       cancelled: CancelFn | None = None) -> ProbeResult:
    """Logistic regression (the LinearProbe protocol) on raw pixels: what a backbone has to beat."""
    dataset = load_dataset(dataset_config)
    features = pixel_features(dataset, size, grey, cancelled)
    key = stable_hash(["pixels", dataset.fingerprint, size, grey])
    return cached_linear_probe(features, dataset.labels, key, probe_config, callback)


def run_random_weights_baseline(dataset_config: DatasetConfig, backbone_config: BackboneConfig,
                                extraction_config: ExtractionConfig = ExtractionConfig(),
                                probe_config: ProbeConfig = ProbeConfig(), progress: ProgressFn | None = None,
                                cancelled: CancelFn | None = None) -> ProbeResult:
    """The same architecture with random init (BackboneConfig.seed), same extraction and probe.

    Separates what pretraining contributes from what the architecture's inductive bias does alone.
    """
    random_config = dataclasses.replace(backbone_config, weights="random")
    features = extract(dataset_config, random_config, extraction_config, progress, cancelled)
    return cached_linear_probe(features.features, features.labels, features.key, probe_config)


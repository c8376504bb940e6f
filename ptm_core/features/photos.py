"""Features of a few images held in memory (a browser session's own photos): nothing is read from or written to the
data folder, no feature cache, no run record.

Each image goes through the model's own eval transform (timm's data config of the loaded model, as
models/predict.py does: resize, centre crop, the entry's mean and std), then the pooled pre-logit vector the rest of
the app calls a backbone's features (models/precision.pre_logits). The model is loaded once per process for each
of the last few configs, its batch norms folded into the convolutions and laid out channels-last as the extraction
path does (features/extraction.inference_model, a copy checked against the original), and only ever read, so
sessions share it.
"""
from __future__ import annotations

import functools
import threading
from typing import Callable

import numpy as np
import timm
import torch
from PIL import Image

from ptm_core.base.configs import BackboneConfig
from ptm_core.base.messages import M_
from ptm_core.data.imaging import ImageRejected, resize_problem
from ptm_core.models.precision import fold_batchnorms, pre_logits, resize_side
from ptm_core.models.weights import load_backbone

BATCH = 16
_LOADING = threading.Lock()  # a warm-up thread and a session asking at once load the model once


def feature_model(config: BackboneConfig) -> tuple[torch.nn.Module, dict]:
    """The model ready for inference (eval mode, batch norms folded, channels-last) and its eval data config, once
    per process per config."""
    with _LOADING:
        return _prepared(config)


@functools.lru_cache(maxsize=4)
def _prepared(config: BackboneConfig) -> tuple[torch.nn.Module, dict]:
    loaded = load_backbone(config)
    cfg = timm.data.resolve_model_data_config(loaded.model)
    model, _folded = fold_batchnorms(loaded.model, pre_logits, tuple(cfg["input_size"]))
    return model.to(memory_format=torch.channels_last), cfg


def input_side(config: BackboneConfig) -> int:
    """The side of the square the model sees (its eval crop)."""
    return int(feature_model(config)[1]["input_size"][-1])


def photo_features(config: BackboneConfig, images: list[Image.Image],
                   progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """N x D float32 features of RGB images, in batches of BATCH; `progress(done, total)` after each batch. An image
    whose eval resize would exceed the pixel limit is refused (ImageRejected), as models/predict.py refuses it."""
    model, cfg = feature_model(config)
    transform = timm.data.create_transform(**cfg, is_training=False)
    side = resize_side(cfg)
    for image in images:
        problem = resize_problem(image.width, image.height, side)
        if problem is not None:
            raise ImageRejected(M_("The image is {problem}.", problem=problem))
    rows = []
    with torch.inference_mode():
        for start in range(0, len(images), BATCH):
            batch = torch.stack([transform(image.convert("RGB")) for image in images[start:start + BATCH]])
            rows.append(pre_logits(model, batch.contiguous(memory_format=torch.channels_last)).numpy())
            if progress is not None:
                progress(min(start + BATCH, len(images)), len(images))
    return np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)

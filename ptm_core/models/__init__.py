"""Backbones: the catalog and model cards, weight sources (hub, bundled, random, a file), precision and the
fast paths, OpenVINO, and which runtime and precision computes a run (measured by calibration).
"""
from ptm_core.models.catalog import DEFAULT_BACKBONE, model_card
from ptm_core.models.weights import LoadedBackbone, load_backbone
from ptm_core.models.precision import PRECISION_LABELS, autocast, pre_logits, resize_side
from ptm_core.models.calibration import Pair
from ptm_core.models.extraction_path import ExtractionPath

__all__ = ["DEFAULT_BACKBONE", "ExtractionPath", "LoadedBackbone", "PRECISION_LABELS", "Pair", "autocast",
           "load_backbone", "model_card", "pre_logits", "resize_side"]

"""Backbones: the catalog and model cards, weight sources (hub, bundled, random, a file), precision and the
fast paths, OpenVINO, and which runtime and precision computes a run (measured by calibration).
"""
from ptm_core.models.catalog import DEFAULT_BACKBONE, model_card
from ptm_core.models.weights import LoadedBackbone, load_backbone
from ptm_core.models.precision import PRECISION_LABELS, autocast, pre_logits, resize_side
from ptm_core.models.calibration import Pair
from ptm_core.models.extraction_path import ExtractionPath
# Registers squeezenet1_1 with timm: any import of ptm_core.models (weights, catalog, the OpenVINO child process)
# runs this first, so timm.create_model and timm.is_model know the name wherever the engine builds a model.
from ptm_core.models import squeezenet as squeezenet_registration  # noqa: F401

__all__ = ["DEFAULT_BACKBONE", "ExtractionPath", "LoadedBackbone", "PRECISION_LABELS", "Pair", "autocast",
           "load_backbone", "model_card", "pre_logits", "resize_side"]

"""CKA across a network's layers: layer x layer for one backbone (the "block structure" of Nguyen, Raghu & Kornblith,
ICLR 2021), and each stage pretrained vs fine-tuned (Neyshabur, Sedghi & Zhang, NeurIPS 2020).

Both read the layer sweep's stage features (evals.layer_sweep: every stage's output, globally average-pooled).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
from timm.data import create_transform

from ptm_core.base.configs import BackboneConfig, DatasetConfig, ExtractionConfig, stable_hash
from ptm_core.base.errors import PTMError
from ptm_core.base.files import file_sha256
from ptm_core.data import load_dataset
from ptm_core.evals.layer_sweep import (LAYOUT, StageFeatures, extract_stages, read_stages, stage_features,
                                        stage_names)
from ptm_core.evals.similarity import CKAMatrix, cka, layer_cka_matrix
from ptm_core.features.extraction import CancelFn, ProgressFn, data_config, resolve_device
from ptm_core.finetune.finetuning import load_finetuned
from ptm_core.models.precision import resize_side
from ptm_core.runs.artifacts import artifact_dir, enforce_cache_cap, load_npz, save_npz

def layer_matrix(stages: StageFeatures) -> CKAMatrix:
    """Linear CKA between every pair of the sweep's layers (its last: the pooled pre-logit features); cached on disk
    keyed by the sweep's stage features."""
    layers, names = list(stages.features), list(stages.names)
    key = stable_hash(["layer-cka", stages.key])
    path = artifact_dir("similarity") / f"{key}.npz"
    cached = load_npz(path)
    if cached is not None:
        arrays, meta = cached
        return CKAMatrix(arrays["values"], meta["names"], meta["n"], meta["method"], meta.get("batch_size"),
                         meta.get("n_batches"))
    matrix = layer_cka_matrix(layers, names)
    save_npz(path, meta={k: v for k, v in matrix.to_dict().items() if k != "values"}, values=matrix.values)
    enforce_cache_cap("similarity")
    return matrix


def finetuned_stages(checkpoint: str | os.PathLike, dataset_config: DatasetConfig, batch_size: int = 64,
                     device: str = "auto", progress: ProgressFn | None = None,
                     cancelled: CancelFn | None = None) -> StageFeatures:
    """Every stage's pooled output under fine-tuned weights, at the fine-tune's image size (cached by the
    checkpoint's content and the dataset)."""
    model, meta = load_finetuned(checkpoint)
    dataset = load_dataset(dataset_config)
    cfg = data_config(model, int(meta["image_size"]))
    key = stable_hash(["finetuned-stages", LAYOUT, file_sha256(Path(checkpoint)), dataset.fingerprint,
                       int(meta["image_size"])])
    path = artifact_dir("stages") / f"{key}.npz"
    if (cached := read_stages(path, key)) is not None:
        return cached
    stages = extract_stages(model, dataset, create_transform(**cfg, is_training=False), batch_size,
                            resolve_device(device), progress, cancelled, resize_side(cfg))
    if dataset.unreadable:  # as the pretrained stage features do: those rows are no image's features
        dataset, kept = dataset.without_unreadable()
        stages = [stage[kept] for stage in stages]
    names = stage_names(model, len(stages))
    save_npz(path, meta={"names": names, "checkpoint": str(checkpoint)}, labels=dataset.labels,
             **{f"stage_{i}": s for i, s in enumerate(stages)})
    enforce_cache_cap("stages")
    return StageFeatures(names, stages, dataset.labels, key)


def finetune_stage_cka(dataset_config: DatasetConfig, backbone_config: BackboneConfig, checkpoint: str,
                       image_size: int, extraction: ExtractionConfig = ExtractionConfig(),
                       progress: ProgressFn | None = None, cancelled: CancelFn | None = None) -> list[dict]:
    """Per stage: linear CKA between the pretrained and the fine-tuned network's pooled output, on the same images
    at the fine-tune's image size. One row per stage, shallow to deep: index, name, dim, cka, n."""
    before = stage_features(dataset_config, backbone_config, dataclasses.replace(extraction, image_size=image_size),
                            None if progress is None else lambda f, m="": progress(0.5 * f, m), cancelled)
    after = finetuned_stages(checkpoint, dataset_config, extraction.batch_size, extraction.device,
                             None if progress is None else lambda f, m="": progress(0.5 + 0.5 * f, m), cancelled)
    if len(before.features) != len(after.features) or not np.array_equal(before.labels, after.labels):
        raise PTMError("The pretrained and fine-tuned networks' stages do not line up (another architecture or other "
                       "images); per-layer CKA needs the same stages on the same images.")
    return [{"index": i, "name": name, "dim": int(x.shape[1]), "cka": cka(x, y).cka, "n": len(x)}
            for i, (name, x, y) in enumerate(zip(before.names, before.features, after.features))]

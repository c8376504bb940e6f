"""Layer sweep: linear-probe accuracy of every block's globally average-pooled output, and of the final pooled
pre-logit features the rest of the app probes, shallow to deep."""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from timm.data import create_transform
from torch import nn

from ptm_core.base.messages import M_
from ptm_core.runs.artifacts import artifact_dir, enforce_cache_cap, load_npz, save_npz
from ptm_core.base.configs import BackboneConfig, DatasetConfig, ExtractionConfig, ProbeConfig, stable_hash
from ptm_core.data import Dataset, load_dataset
from ptm_core.base.errors import Cancelled, PTMError
from ptm_core.base.stats import accuracy_interval, paired_test
from ptm_core.features.extraction import CancelFn, ProgressFn, data_config, feature_key, image_batch, resolve_device
from ptm_core.models.precision import resize_side
from ptm_core.probes.linear import run_linear_probe
from ptm_core.models.weights import load_backbone

STAGES_SHARE = 0.8  # of the sweep's progress: the stage features; the per-stage probes take the rest
FINAL_NAME = "pooled (pre-logits)"  # the last row: the features extraction gives every other page
LAYOUT = "every-block-v2"  # in the cache key: stage features cached before every block and the final were swept


@dataclass
class StageFeatures:
    names: list[str]
    features: list[np.ndarray]  # one N x C_i array per stage, shallow to deep
    labels: np.ndarray
    key: str


@dataclass
class LayerResult:
    index: int
    name: str
    dim: int
    test_accuracy: float
    best_C: float
    n_test: int
    # The probe's predictions of the test images and their true classes (the same images for every layer), for a
    # paired test between layers; not in to_dict.
    predictions: np.ndarray | None = field(default=None, repr=False, compare=False)
    truth: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def test_accuracy_ci95(self) -> tuple[float, float]:
        """Wilson's 95 % interval of `test_accuracy` on these n_test images (every stage is tested on the same)."""
        return accuracy_interval(self.test_accuracy, self.n_test)

    def to_dict(self) -> dict:
        return {"index": self.index, "name": self.name, "dim": self.dim, "test_accuracy": self.test_accuracy,
                "test_accuracy_ci95": list(self.test_accuracy_ci95), "n_test": self.n_test, "best_C": self.best_C}


def every_block(model: nn.Module) -> bool:
    """Whether timm's forward_intermediates can return every block (`extra_blocks`), not only the blocks where
    the resolution drops (EfficientNet's feature_info skips blocks.3 and blocks.5)."""
    return "extra_blocks" in inspect.signature(model.forward_intermediates).parameters and hasattr(model, "blocks")


def stage_names(model: nn.Module, n_stages: int) -> list[str]:
    """The swept layers' names, shallow to deep, the final pooled features last: the stem and every block where
    timm returns every block; else timm's feature_info module names when they line up with the outputs."""
    if every_block(model) and n_stages == len(model.blocks) + 2:
        return ["stem", *(f"blocks.{i}" for i in range(len(model.blocks))), FINAL_NAME]
    info = getattr(model, "feature_info", None) or []
    names = [entry.get("module", f"stage{i}") if isinstance(entry, dict) else f"stage{i}" for i, entry in enumerate(info)]
    names = names if len(names) == n_stages - 1 else [f"stage{i}" for i in range(n_stages - 1)]
    return [*names, FINAL_NAME]


def _pool(output: torch.Tensor) -> torch.Tensor:
    # NCHW maps average over space; token sequences (N, L, C) average over tokens.
    return output.mean(dim=(2, 3)) if output.ndim == 4 else output.mean(dim=1) if output.ndim == 3 else output


@torch.inference_mode()
def _stage_batch(model: nn.Module, batch: torch.Tensor) -> list[np.ndarray]:
    extra = {"extra_blocks": True} if every_block(model) else {}
    final, outputs = model.forward_intermediates(batch, **extra)
    pooled = [_pool(o) for o in outputs] + [model.forward_head(final, pre_logits=True)]
    return [p.flatten(1).float().cpu().numpy() for p in pooled]


def extract_stages(model: nn.Module, dataset: Dataset, transform, batch_size: int, device: torch.device,
                   progress: ProgressFn | None = None, cancelled: CancelFn | None = None,
                   side: int | None = None) -> list[np.ndarray]:
    """Pooled output of every stage for every image, through timm's forward_intermediates. An image that cannot
    be decoded now (or resized to `side`) is a blank row, noted in `dataset.unreadable`, as in extraction."""
    if not hasattr(model, "forward_intermediates"):
        raise PTMError(f"{type(model).__name__} has no forward_intermediates in this timm; the layer sweep needs it.")
    model = model.to(device=device, memory_format=torch.channels_last).eval()
    chunks: list[list[np.ndarray]] = []
    for start in range(0, len(dataset), batch_size):
        if cancelled is not None and cancelled():
            raise Cancelled()
        stop = min(start + batch_size, len(dataset))
        batch = image_batch(dataset, transform, range(start, stop), side=side)
        chunks.append(_stage_batch(model, batch.to(device).contiguous(memory_format=torch.channels_last)))
        if progress is not None:
            progress(stop / len(dataset), M_("{done}/{total} images through every stage", done=stop,
                                             total=len(dataset)))
    return [np.concatenate(stage).astype(np.float32) for stage in zip(*chunks)]


def read_stages(path, key: str) -> StageFeatures | None:
    """Stage features cached at `path` (save_npz's checksum checked), or None."""
    cached = load_npz(path)
    if cached is None:
        return None
    arrays, meta = cached
    return StageFeatures(meta["names"], [arrays[f"stage_{i}"] for i in range(len(meta["names"]))], arrays["labels"],
                         key)


def stage_features(dataset_config: DatasetConfig, backbone_config: BackboneConfig,
                   config: ExtractionConfig = ExtractionConfig(), progress: ProgressFn | None = None,
                   cancelled: CancelFn | None = None) -> StageFeatures:
    """Per-stage pooled features, cached on disk keyed like the pre-logit features plus 'stages'."""
    dataset = load_dataset(dataset_config)
    loaded = load_backbone(backbone_config)
    cfg = data_config(loaded.model, config.image_size)
    key = stable_hash(["stages", LAYOUT, feature_key(loaded.identity, dataset, cfg, config, backbone_config.name)])
    path = artifact_dir("stages") / f"{key}.npz"
    if (cached := read_stages(path, key)) is not None:
        return cached
    stages = extract_stages(loaded.model, dataset, create_transform(**cfg, is_training=False), config.batch_size,
                            resolve_device(config.device), progress, cancelled, resize_side(cfg))
    if dataset.unreadable:  # their blank rows are no image's features: leave them out, as extraction does
        dataset, kept = dataset.without_unreadable()
        stages = [stage[kept] for stage in stages]
    names = stage_names(loaded.model, len(stages))
    # Always PyTorch fp32 (no autocast): the key's precision part says so, and so does the meta.
    save_npz(path, meta={"names": names, "backbone": backbone_config.name, "weights": loaded.identity,
                         "precision": "fp32", "runtime": "torch"},
             labels=dataset.labels, **{f"stage_{i}": s for i, s in enumerate(stages)})
    enforce_cache_cap("stages")
    return StageFeatures(names, stages, dataset.labels, key)


def run_layer_sweep(dataset_config: DatasetConfig, backbone_config: BackboneConfig,
                    config: ExtractionConfig = ExtractionConfig(), probe_config: ProbeConfig = ProbeConfig(),
                    progress: ProgressFn | None = None, cancelled: CancelFn | None = None) -> list[LayerResult]:
    """Linear-probe test accuracy per stage, shallow to deep, on the probes' usual split."""
    started = time.perf_counter()
    stages = stage_features(dataset_config, backbone_config, config,
                            None if progress is None else lambda f, m="": progress(STAGES_SHARE * f, m), cancelled)
    results = []
    for index, (name, features) in enumerate(zip(stages.names, stages.features)):
        if cancelled is not None and cancelled():
            raise Cancelled()
        probe = run_linear_probe(features, stages.labels, probe_config, cancelled=cancelled)
        results.append(LayerResult(index, name, int(features.shape[1]), probe.test_accuracy, probe.best_C,
                                   probe.n_test, np.asarray(probe.predictions),
                                   np.asarray(stages.labels)[probe.test_indices]))
        if progress is not None:
            progress(STAGES_SHARE + (1 - STAGES_SHARE) * (index + 1) / len(stages.names),
                     f"probed {name} ({time.perf_counter() - started:.0f} s)")
    return results


def inner_vs_final(results: list[LayerResult]) -> dict | None:
    """The most accurate inner layer against the final pooled features, on the same test images by McNemar's exact
    test (base.stats.paired_test): whether an inner layer really reads the classes better than the last one.
    None when no inner layer scores above the final one, or predictions were not kept."""
    if len(results) < 2 or any(r.predictions is None for r in results):
        return None
    final, inner = results[-1], max(results[:-1], key=lambda r: r.test_accuracy)
    if inner.test_accuracy <= final.test_accuracy:
        return None
    test = paired_test(final.truth, inner.predictions, final.predictions)
    return {"inner": inner.name, "final": final.name, **test.to_dict()}

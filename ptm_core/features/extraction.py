"""Pooled pre-logit features from a timm backbone, cached on disk by what determines them."""
from __future__ import annotations

import logging
import time
from typing import Callable

import numpy as np
import timm
import torch
from PIL import Image
from timm.data import resolve_model_data_config
from torch import nn

from ptm_core.base.messages import M_
from ptm_core.base import checks

from ptm_core.models import openvino as openvino_runtime
from ptm_core.runs.artifacts import artifact_dir, enforce_cache_cap, load_npz, save_npz
from ptm_core.base.capabilities import capabilities
from ptm_core.base.configs import BackboneConfig, DatasetConfig, ExtractionConfig, stable_hash
from ptm_core.data import Dataset, load_dataset
from ptm_core.data.types import ItemUnreadable
from ptm_core.base.errors import Cancelled, PTMError
from ptm_core.models.extraction_path import ExtractionPath, candidates, numerics_to_look_up, plan
from ptm_core.models.precision import (BatchTransform, autocast, check_precision, fold_batchnorms, pre_logits,
                                 resolve_precision)
from ptm_core.features.featureset import FeatureSet
from ptm_core.features.meta import as_this_run, dataset_fields
from ptm_core.base.limits import cache_max_bytes
from ptm_core.models.openvino import RuntimeSwitch, check_runtime
from ptm_core.features.preview import ProgressivePreview, extraction_order
from ptm_core.features.shards import load_sharded, shard_dir
from ptm_core.models.weights import LoadedBackbone, load_backbone

log = logging.getLogger(__name__)
ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]
# A checkpoint's rows are in this visiting order; one written in another (file order, before previews) is not resumed.
ORDER = "seeded permutation 0"


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise PTMError("--device cuda asked for, but no CUDA GPU is available; use --device auto or cpu.")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise PTMError("--device mps asked for, but this machine has no Apple GPU (MPS); use --device auto or cpu.")
    if name not in ("cpu", "cuda", "mps"):
        raise PTMError(f"Unknown device '{name}'; use auto, cpu, cuda or mps.")
    return torch.device(name)


def data_config(model: nn.Module, image_size: int | None) -> dict:
    """timm's eval preprocessing for `model`, with an optional square input-size override."""
    cfg = resolve_model_data_config(model)
    if image_size is not None:
        size = checks.image_size(image_size)
        cfg["input_size"] = (3, size, size)
    return cfg


def feature_key(identity: str, dataset: Dataset, cfg: dict, config: ExtractionConfig, name: str,
                precision: str = "fp32") -> str:
    """`precision`: the numbers the run gave (`calibration.Pair.numerics`: fp32, bf16 for PyTorch's autocast,
    bf16-openvino): bf16 features differ a little, and differently per runtime, so each is another entry."""
    transform = {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(cfg.items())}
    return stable_hash([timm.models.split_model_name_tag(name)[0], identity, dataset.fingerprint, transform,
                        config.layer, precision])


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def inference_model(model: nn.Module, input_size: tuple[int, ...]) -> tuple[nn.Module, int]:
    """`model` with its batch norms folded into the convolutions (a checked copy), and how many were folded."""
    return fold_batchnorms(model, pre_logits, input_size)


def image_batch(dataset: Dataset, transform, indices, device: torch.device | None = None,
                 side: int | None = None) -> torch.Tensor:
    """Transformed images (normalised once per batch for a BatchTransform); one that fails to decode now, or
    whose resize to `side` (default: a BatchTransform's `resize_side`) would be too large, is recorded in
    `dataset.unreadable` and stands in as a blank image, so rows keep their places and one bad file never
    ends the run."""
    images, side = [], getattr(transform, "resize_side", None) if side is None else side
    for i in map(int, indices):  # plain ints: `unreadable` goes into JSON meta
        try:
            image = dataset.image(i, side)
        except ItemUnreadable as exc:
            dataset.unreadable[i] = exc.reason
            image = Image.new("RGB", (32, 32))
        images.append(transform(image))
    if isinstance(transform, BatchTransform):
        return transform.stack(images, device)
    return torch.stack(images)


def extract_features(model: nn.Module, dataset: Dataset, transform, batch_size: int, device: torch.device,
                     progress: ProgressFn | None = None, cancelled: CancelFn | None = None,
                     resume: np.ndarray | None = None, checkpoint: Callable[[np.ndarray], None] | None = None,
                     checkpoint_every_s: float = 10.0, precision: str = "fp32", order: np.ndarray | None = None,
                     preview: ProgressivePreview | None = None, fast_forward: RuntimeSwitch | None = None,
                     pace_pending: Callable[[bool], None] | None = None) -> np.ndarray:
    """N x D float32 features in dataset order; on out-of-memory the batch size halves and the batch is retried.

    `transform` is a per-image timm transform or a BatchTransform; `precision` a resolved one (fp32/bf16).
    `order`: the order to visit the images in (default: dataset order); `resume` and what `checkpoint`
    receives are the features of the first images in that order: `resume` from an earlier, stopped run,
    `checkpoint` every `checkpoint_every_s` and when the run is cancelled. `preview`, when due, gets the
    features, labels and class names of the images done so far. `fast_forward(done)` gives another runtime's
    forward (OpenVINO) for the batch at row `done` once it is ready; until then the model runs, and
    `pace_pending(True)` says the pace will change (`pace_pending(False)` once it has, or will not).
    """
    model = model.to(device=device, memory_format=torch.channels_last)
    order = np.arange(len(dataset)) if order is None else order
    out: list[np.ndarray] = [resume] if resume is not None and len(resume) else []
    n, done = len(dataset), (len(resume) if resume is not None else 0)
    start, first, saved_at = time.perf_counter(), done, time.monotonic()
    if preview is not None:
        preview.start()
    while done < n:
        if cancelled is not None and cancelled():
            if checkpoint is not None and out:
                checkpoint(np.concatenate(out))
            raise Cancelled()
        stop = min(done + batch_size, n)
        batch = image_batch(dataset, transform, order[done:stop], device)
        batch = batch.to(device).contiguous(memory_format=torch.channels_last)
        runner = fast_forward(done) if fast_forward is not None else None
        if pace_pending is not None and fast_forward is not None:
            pace_pending(fast_forward.pending)
        try:
            if runner is not None:
                out.append(runner(batch))
            else:
                with autocast(precision, device):
                    out.append(pre_logits(model, batch).cpu().numpy())
        except (RuntimeError, torch.OutOfMemoryError) as exc:
            if not _is_oom(exc) or batch_size == 1:
                raise
            batch_size = max(1, batch_size // 2)
            if device.type == "cuda":
                torch.cuda.empty_cache()
            continue
        done = stop
        if checkpoint is not None and time.monotonic() - saved_at > checkpoint_every_s:
            checkpoint(np.concatenate(out))
            saved_at = time.monotonic()
        if progress is not None:
            rate = (done - first) / max(time.perf_counter() - start, 1e-9)
            progress(done / n, M_("{done}/{total} images, {rate:.0f} img/s", done=done, total=n, rate=rate))
        if preview is not None and done < n and preview.due():
            preview(np.concatenate(out), dataset.labels[order[:done]], dataset.class_names, n)
    if pace_pending is not None:  # whatever comes next has a pace of its own
        pace_pending(False)
    features = np.empty((n, out[0].shape[1]), dtype=np.float32)
    features[order] = np.concatenate(out)
    return features


def _partial(path, dataset: Dataset) -> tuple[np.ndarray | None, float]:
    """The features of a stopped run's checkpoint and the compute seconds they took (None, 0.0 if none)."""
    loaded = load_npz(path)
    if loaded is None or len(loaded[0]["features"]) > len(dataset) or loaded[1].get("order") != ORDER:
        return None, 0.0
    dataset.unreadable.update({int(i): r for i, r in loaded[1].get("unreadable", {}).items()})
    return loaded[0]["features"], float(loaded[1].get("compute_seconds") or 0.0)


def check_finite(features: np.ndarray, backbone: str) -> None:
    """NaN/inf features would fail later inside sklearn with its own words; say it here, with what to try."""
    bad = int((~np.isfinite(features).all(axis=1)).sum())
    if bad:
        raise PTMError(f"{backbone} produced NaN or infinite features for {bad} of {len(features)} images; "
                       f"try other weights or another --image-size.")


def device_and_precision(config: ExtractionConfig) -> tuple[torch.device, str]:
    """The device of a run and its precision where it cannot be measured (fast_paths.resolve_precision: the Ray
    engine's); bad names fail here, before any loading."""
    check_precision(config.precision)
    check_runtime(config.runtime)
    device = resolve_device(config.device)
    return device, resolve_precision(config.precision, device)


def save_to_cache(result: "FeatureSet", path) -> None:
    """Write the cache entry, then evict. A full disk or a read-only cache must never cost finished features:
    the result is delivered all the same, its meta saying `cached: False` and why (the CLI warns)."""
    try:
        result.to_npz(path)
    except OSError as exc:
        log.warning("features %s not cached: %s", result.key, exc)
        result.meta.update(cached=False, cache_error=exc.strerror or str(exc))
        return
    result.meta["cached"] = True
    try:
        enforce_cache_cap("features")
    except OSError as exc:
        log.warning("cache eviction failed: %s", exc)


def _rows(resume: np.ndarray | None) -> int:
    return 0 if resume is None else len(resume)


def load_inputs(dataset_config: DatasetConfig, backbone_config: BackboneConfig,
                config: ExtractionConfig) -> tuple[Dataset, LoadedBackbone, dict]:
    """The dataset, backbone and timm preprocessing of a run, its settings checked first."""
    checks.whole("--batch-size", config.batch_size, 1, checks.MAX_BATCH)
    if config.image_size is not None:
        checks.image_size(config.image_size)
    cache_max_bytes()  # a bad PTM_CACHE_MAX_BYTES fails now, not after the extraction
    device_and_precision(config)
    dataset = load_dataset(dataset_config)
    loaded = load_backbone(backbone_config)
    return dataset, loaded, data_config(loaded.model, config.image_size)


def prepare(dataset_config: DatasetConfig, backbone_config: BackboneConfig,
            config: ExtractionConfig) -> tuple[Dataset, LoadedBackbone, dict, str]:
    """`load_inputs` and the feature key of a PyTorch run at `device_and_precision`'s precision (the Ray
    engine's: its workers run PyTorch on machines this process cannot measure)."""
    dataset, loaded, cfg = load_inputs(dataset_config, backbone_config, config)
    _, precision = device_and_precision(config)
    return dataset, loaded, cfg, feature_key(loaded.identity, dataset, cfg, config, backbone_config.name, precision)


def cached_features(key: str, started: float, progress: ProgressFn | None = None, dataset: Dataset | None = None,
                    spec: str = "", backbone: str = "") -> FeatureSet | None:
    """The cached features for `key`: the local engine's single file, or a complete Ray shard set.

    With `dataset`, the meta names this run's dataset (`spec`), skip list and `backbone`, not the entry's."""
    cached = FeatureSet.from_npz(artifact_dir("features") / f"{key}.npz", key) or load_sharded(shard_dir(key), key)
    if cached is not None and "openvino" in str(cached.meta.get("runtime")) and not cached.meta.get(
            "openvino_precision"):
        # Written before OpenVINO's precision was set explicitly: on a CPU with native bf16 those "fp32"
        # features were bf16. Computed again (the new entry replaces it).
        log.info("features %s: OpenVINO's precision unrecorded, computing them again", key)
        return None
    if cached is not None:
        if dataset is not None:
            cached.meta = as_this_run(cached.meta, cached.ids, dataset, spec, backbone)
        cached.meta.update(cache_hit=True, from_cache=True, cached=True, seconds=time.perf_counter() - started)
        if progress is not None:
            progress(1.0, M_("features from cache"))
    return cached


def warm_up(dataset_config: DatasetConfig, backbone_config: BackboneConfig, config: ExtractionConfig) -> None:
    """What a run of these settings does before its first batch, done ahead (the app does it for its default at
    start-up, while the user reads the page): its images read, its backbone converted for OpenVINO (in a child
    process) and compiled, and the fastest runtime and precision measured. The run then starts on that path."""
    device, _ = device_and_precision(config)
    dataset, loaded, cfg = load_inputs(dataset_config, backbone_config, config)
    pairs = candidates(config, device)
    if any(p.runtime == "openvino" for p in pairs):
        openvino_runtime.convert_in_child(backbone_config, loaded.identity)
    model, _ = inference_model(loaded.model, cfg["input_size"])
    plan(config, device, backbone_config, loaded, model, cfg["input_size"], len(dataset), pairs)


def extract(dataset_config: DatasetConfig, backbone_config: BackboneConfig, config: ExtractionConfig,
            progress: ProgressFn | None = None, cancelled: CancelFn | None = None,
            preview: ProgressivePreview | None = None, pace_pending: Callable[[bool], None] | None = None
            ) -> FeatureSet:
    """Features for a dataset and backbone, from the cache when the same inputs were seen before.

    meta: `seconds` is this call's wall time (a cache read when `from_cache`); `compute_seconds`
    and `images_per_s` are those of the run(s) that computed the features, kept in the cache.
    `preview` sees the images done so far every few seconds while features are computed (not when cached);
    `pace_pending`: see `extract_features` (e.g. a job's `ctx.pace_pending`, which holds its time-left estimate).
    Which runtime and precision compute them: see ptm_core.models.extraction_path (meta `runtime`, `precision`,
    `path_choice`); features of any pair this run could use are taken from the cache first.
    """
    device, _ = device_and_precision(config)  # a bad name fails now, before any loading
    started = time.perf_counter()
    dataset, loaded, cfg = load_inputs(dataset_config, backbone_config, config)
    pairs = candidates(config, device)
    keys = [feature_key(loaded.identity, dataset, cfg, config, backbone_config.name, numerics)
            for numerics in numerics_to_look_up(pairs)]
    for key in keys:
        cached = cached_features(key, started, progress, dataset, dataset_config.spec, backbone_config.name)
        if cached is not None:
            return cached
    model, n_folded = inference_model(loaded.model, cfg["input_size"])
    path = plan(config, device, backbone_config, loaded, model, cfg["input_size"], len(dataset), pairs, progress)
    key = feature_key(loaded.identity, dataset, cfg, config, backbone_config.name, path.pair.numerics)
    return _compute(dataset, dataset_config, backbone_config, config, loaded, cfg, key, model, path, device,
                    dict(progress=progress, cancelled=cancelled, preview=preview, pace_pending=pace_pending),
                    started, n_folded)


def _compute(dataset: Dataset, dataset_config: DatasetConfig, backbone_config: BackboneConfig,
             config: ExtractionConfig, loaded: LoadedBackbone, cfg: dict, key: str, model: nn.Module,
             path: ExtractionPath, device: torch.device, hooks: dict, started: float, n_folded: int) -> FeatureSet:
    """Run the extraction along `path` (resuming a stopped run's checkpoint), then cache and return it."""
    out = artifact_dir("features") / f"{key}.npz"
    partial_path = out.with_name(f"{key}.partial.npz")
    resume, earlier_seconds = _partial(partial_path, dataset)
    t0 = time.perf_counter()

    def checkpoint(feats: np.ndarray) -> None:
        # The time so far travels with the rows, so a resumed run reports the whole compute time.
        try:
            save_npz(partial_path, meta={"compute_seconds": earlier_seconds + time.perf_counter() - t0,
                                         "unreadable": dataset.unreadable, "order": ORDER}, features=feats)
        except OSError as exc:  # a full disk: the checkpoint only saves time, the run goes on without it
            log.warning("extraction checkpoint not written: %s", exc)

    features = extract_features(model, dataset, BatchTransform(cfg), config.batch_size, device, hooks["progress"],
                                hooks["cancelled"], resume=resume, checkpoint=checkpoint,
                                precision=path.pair.precision, order=extraction_order(len(dataset)),
                                preview=hooks["preview"], fast_forward=path.switch,
                                pace_pending=hooks["pace_pending"])
    extract_seconds = time.perf_counter() - t0
    n_new = len(dataset) - _rows(resume)
    failed_at_decode = [(dataset.ids[i], reason) for i, reason in sorted(dataset.unreadable.items())]
    fields = dataset_fields(dataset, dataset_config.spec, failed_at_decode)
    if dataset.unreadable:
        dataset, kept = dataset.without_unreadable()
        features = features[kept]
    check_finite(features, backbone_config.name)
    meta = {
        "key": key, "backbone": backbone_config.name, "weights": loaded.identity,
        **fields,
        "input_size": list(cfg["input_size"]), "layer": config.layer,
        "device": str(device), "images_per_s": n_new / max(extract_seconds, 1e-9),
        # Which path ran: features always say what produced them (precision is also in the key).
        **path.meta(_rows(resume)), "batchnorms_folded": n_folded, "machine": capabilities().describe(),
        "preprocessing": "batched",
        "compute_seconds": earlier_seconds + extract_seconds,
        "resumed_from": _rows(resume),
    }
    result = FeatureSet(features, dataset.labels, dataset.class_names, dataset.ids, key, meta)
    save_to_cache(result, out)
    for leftover in (partial_path, partial_path.with_name(partial_path.name + ".sha256")):
        try:
            leftover.unlink(missing_ok=True)
        except OSError:  # a read-only cache: the leftover is harmless, the result is what matters
            pass
    result.meta.update(cache_hit=False, from_cache=False, seconds=time.perf_counter() - started)
    return result

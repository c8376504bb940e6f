"""`extract --engine ray`: the same extraction, spread over a Ray cluster, written as resumable shards.

The pipeline is Ray Data: row indices -> a task map that decodes and preprocesses images with the
very code the local engine uses (`Dataset.image` + timm's eval transform for the model) -> an actor
pool where each actor holds the backbone once and embeds batches. The driver collects the features
and writes them as row-range shards under this machine's cache (see ptm_core.features.shards): results need no
shared filesystem, and only the rows of missing shards are ever sent out again.

Starting or joining Ray, and the check that every node sees the images of a folder:/zip: dataset, are in
ptm_core.features.ray_cluster. Ray is optional (requirements-scale.txt): both modules import it only inside functions,
so ptm_core imports without it and `--engine ray` says how to get it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ptm_core.base.messages import M_
from ptm_core.features import shards
from ptm_core.base.configs import BackboneConfig, DatasetConfig, ExtractionConfig
from ptm_core.data import Dataset
from ptm_core.base.errors import Cancelled, PTMError
from ptm_core.features.extraction import (CancelFn, FeatureSet, ProgressFn, check_finite, device_and_precision,
                                 image_batch, cached_features, inference_model, prepare)
from ptm_core.models.precision import PRECISION_LABELS, autocast, pre_logits, resize_side
from ptm_core.features.meta import dataset_fields
from ptm_core.base.logs import native_stderr_to_log
from ptm_core.features.ray_cluster import check_paths_on_nodes, check_reachable, import_ray, ray_session

ShardFn = Callable[[int, int], None]


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: start a local Ray sized to this machine (or use one this process joined)
    workers: int = 1  # model actors
    gpus_per_worker: float | None = None  # None: share the cluster's GPUs (none: CPU), unless --device cpu
    shard_rows: int = shards.SHARD_ROWS


def check_options(options: RayOptions) -> None:
    if not isinstance(options.workers, int) or options.workers < 1:
        raise PTMError(f"--workers must be a whole number of at least 1, got {options.workers}.")
    gpus = options.gpus_per_worker
    if gpus is not None and not (math.isfinite(gpus) and gpus >= 0):
        raise PTMError(f"--gpus-per-worker must be a number of at least 0, got {gpus}.")
    if options.shard_rows < 1:
        raise PTMError(f"Shards need at least one row, got {options.shard_rows}.")


def worker_resources(ray, options: RayOptions, device: str) -> dict[str, float]:
    """num_cpus/num_gpus for each model actor, checked against what the cluster has."""
    have = ray.cluster_resources()
    cpus, gpus, workers = float(have.get("CPU", 0)), float(have.get("GPU", 0)), options.workers
    per_gpu = options.gpus_per_worker
    if per_gpu is None:
        per_gpu = 0.0 if device == "cpu" or not gpus else min(1.0, gpus / workers)
    if per_gpu * workers > gpus:
        raise PTMError(f"--gpus-per-worker {per_gpu:g} x --workers {workers} needs {per_gpu * workers:g} GPUs, "
                       f"but the Ray cluster has {gpus:g}; lower them, or leave --gpus-per-worker out to run on CPUs.")
    if device == "cuda" and not per_gpu:
        raise PTMError("--device cuda asked for, but the Ray cluster has no GPU; use --device auto or cpu.")
    # Decoding runs as Ray tasks beside the actors: CPU actors get half of the CPUs (and at most half a node,
    # so every node keeps some for decoding), or actors and decoders wait on each other.
    node_cpus = max([float(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")] or [cpus])
    per_cpu = 1.0 if per_gpu else min(cpus / 2 / workers, max(node_cpus / 2, 0.5))
    return {"num_cpus": per_cpu, "num_gpus": per_gpu}


def _decode_batch(batch: dict[str, np.ndarray], dataset_ref, cfg: dict) -> dict[str, np.ndarray]:
    """Rows -> model-ready tensors through the local engine's own code; unreadable images come back blank."""
    import ray
    from timm.data import create_transform

    dataset: Dataset = ray.get(dataset_ref)  # Ray Data passes fn_kwargs as they are: refs are not resolved
    rows = [int(i) for i in batch["row"]]
    dataset.unreadable.clear()
    images = image_batch(dataset, create_transform(**cfg, is_training=False), rows, side=resize_side(cfg))
    reasons = np.array([dataset.unreadable.get(i, "") for i in rows], dtype=str)
    return {"row": batch["row"], "image": images.numpy(), "unreadable": reasons}


class Embedder:
    """One per worker: holds the backbone (sent once through the object store) and embeds batches."""

    def __init__(self, model_ref, device: str, threads: int, precision: str = "fp32") -> None:
        import ray

        torch.set_num_threads(threads)  # as many as the actor's CPUs: more would fight the decoders
        self.device = torch.device(device)
        model: nn.Module = ray.get(model_ref)  # put once by the driver, fetched once per actor
        self.model = model.eval().to(device=self.device, memory_format=torch.channels_last)
        self.precision = precision  # the driver's resolved precision: it is in the feature key

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        images = torch.from_numpy(batch["image"]).to(self.device).contiguous(memory_format=torch.channels_last)
        with autocast(self.precision, self.device):
            features = pre_logits(self.model, images).cpu().numpy()
        return {"row": batch["row"], "features": features,
                "unreadable": batch["unreadable"]}


def _pipeline(ray, rows: list[int], dataset: Dataset, cfg: dict, model: nn.Module, batch_size: int,
              options: RayOptions, resources: dict[str, float], precision: str = "fp32"):
    """The Ray Data dataset that yields {row, features, unreadable} for `rows`, in any order."""
    device = "cuda" if resources["num_gpus"] else "cpu"
    # One block per batch: Ray's default of up to 200 blocks would make most of them a row or two.
    items = ray.data.from_items([{"row": r} for r in rows], override_num_blocks=max(1, -(-len(rows) // batch_size)))
    decoded = items.map_batches(_decode_batch, batch_size=batch_size, batch_format="numpy",
                                fn_kwargs={"dataset_ref": ray.put(dataset), "cfg": cfg})
    accel = {"num_gpus": resources["num_gpus"]} if resources["num_gpus"] else {}
    # A fixed pool of `workers` actors: what `concurrency=N` asked for before Ray 2.51 deprecated it.
    return decoded.map_batches(Embedder, batch_size=batch_size, batch_format="numpy",
                               compute=ray.data.ActorPoolStrategy(size=options.workers),
                               fn_constructor_args=(ray.put(model), device, max(1, int(resources["num_cpus"])), precision),
                               num_cpus=resources["num_cpus"], **accel)


class ShardWriter:
    """Gathers rows as they arrive (in any order) and writes each shard the moment it is whole."""

    def __init__(self, folder: Path, shard_rows: int, n: int, on_shard: ShardFn | None) -> None:
        self.folder, self.shard_rows, self.n, self.on_shard = folder, shard_rows, n, on_shard
        self.buffers: dict[int, tuple[np.ndarray, list[int], dict[int, str]]] = {}
        self.written = 0

    def add(self, rows: np.ndarray, features: np.ndarray, unreadable: np.ndarray) -> None:
        for row, feats, reason in zip(rows.tolist(), features, unreadable.tolist()):
            start = row - row % self.shard_rows
            stop = min(start + self.shard_rows, self.n)
            if start not in self.buffers:
                self.buffers[start] = (np.empty((stop - start, features.shape[1]), np.float32), [], {})
            block, filled, reasons = self.buffers[start]
            block[row - start] = feats
            filled.append(row)
            if reason:
                reasons[row] = str(reason)
            if len(filled) == stop - start:
                shards.write_shard(self.folder, start, stop, block, reasons)
                del self.buffers[start]
                self.written += 1
                if self.on_shard is not None:
                    self.on_shard(start, stop)


def _run(ray, todo: list[tuple[int, int]], writer: ShardWriter, pipeline_args: tuple,
         progress: ProgressFn | None, cancelled: CancelFn | None, done: int) -> tuple[int, float]:
    """Stream the missing shards' rows through the cluster: rows computed, seconds until the first came back."""
    rows = [r for start, stop in todo for r in range(start, stop)]
    if not rows:
        return 0, 0.0
    batches = _pipeline(ray, rows, *pipeline_args).iter_batches(batch_size=None, batch_format="numpy")
    computed, t0, first = 0, time.perf_counter(), 0.0
    try:
        for batch in batches:
            first = first or time.perf_counter() - t0  # worker start-up: process, imports, model
            writer.add(batch["row"], batch["features"], batch["unreadable"])
            computed += len(batch["row"])
            if progress is not None:
                rate = computed / max(time.perf_counter() - t0, 1e-9)
                progress((done + computed) / writer.n, M_("{done}/{total} images, {rate:.0f} img/s",
                                                          done=done + computed, total=writer.n, rate=rate))
            if cancelled is not None and cancelled():
                raise Cancelled()  # finished shards stay on disk; the rerun does the rest
    finally:
        getattr(batches, "close", lambda: None)()  # stops the cluster's work now, not at garbage collection
    return computed, first


def _manifest(key: str, dataset: Dataset, unreadable: dict[int, str], ranges: list[tuple[int, int]],
              dim: int, meta: dict) -> dict:
    kept = [i for i in range(len(dataset)) if i not in unreadable]
    failed_at_decode = [(dataset.ids[i], r) for i, r in sorted(unreadable.items())]
    meta = dict(meta, **dataset_fields(dataset, meta.get("dataset", dataset.name), failed_at_decode))
    return {"complete": True, "key": key, "n_rows": len(dataset), "dim": dim,
            "ids": [dataset.ids[i] for i in kept], "labels": dataset.labels[kept].tolist(),
            "class_names": list(dataset.class_names), "unreadable": {str(i): r for i, r in unreadable.items()},
            "shards": [{"file": shards.shard_name(a, b), "start": a, "stop": b} for a, b in ranges], "meta": meta}


def finish_shards(folder: Path, key: str, dataset: Dataset, ranges: list[tuple[int, int]], meta: dict) -> FeatureSet:
    """Write the manifest once every shard is on disk, then load the set the way every reader will."""
    unreadable: dict[int, str] = {}
    for start, stop in ranges:
        unreadable.update(shards.shard_unreadable(folder / shards.shard_name(start, stop)))
    dim = int(shards.mmap_npz_member(folder / shards.shard_name(*ranges[0]), "features").shape[1])
    shards.write_manifest(folder, _manifest(key, dataset, unreadable, ranges, dim, meta))
    result = shards.load_sharded(folder, key, discard_invalid=False)
    check_finite(result.features, meta["backbone"])
    return result


def _why_precision(asked: str) -> str:
    # Its own function: a conditional inside a multi-line f-string is a syntax error before Python 3.12.
    return "asked for" if asked != "auto" else "auto is fp32 on Ray: the workers cannot be measured from here"


def extract_ray(dataset_config: DatasetConfig, backbone_config: BackboneConfig, config: ExtractionConfig,
                options: RayOptions = RayOptions(), progress: ProgressFn | None = None,
                cancelled: CancelFn | None = None, on_shard: ShardFn | None = None) -> FeatureSet:
    """Features as `extraction.extract` computes them (same key, ids, order), computed on a Ray cluster.

    A cached result for the key (either engine's) is returned without starting Ray. `on_shard(start, stop)`
    is called after each shard is written; meta `rows_computed` says how many rows this call computed.
    """
    check_options(options)
    import_ray()  # before any loading: without Ray, or with a wrong address, say so at once
    if options.address:
        check_reachable(options.address)
    started = time.perf_counter()
    _, precision = device_and_precision(config)
    dataset, loaded, cfg, key = prepare(dataset_config, backbone_config, config)
    cached = cached_features(key, started, progress, dataset, dataset_config.spec, backbone_config.name)
    if cached is not None:
        return cached
    folder = shards.shard_dir(key)
    ranges = shards.plan(len(dataset), options.shard_rows)
    if not ranges:
        raise PTMError(f"{dataset_config.spec} has no images to extract.")
    finished = shards.finished_shards(folder, ranges)
    todo = [r for r in ranges if r not in finished]
    resumed = sum(b - a for a, b in finished)
    with native_stderr_to_log(), ray_session(options.address) as ray:
        if todo:
            check_paths_on_nodes(ray, dataset)  # folder:/zip: read by path: one sentence if a node lacks them
        resources = worker_resources(ray, options, config.device)
        writer = ShardWriter(folder, options.shard_rows, len(dataset), on_shard)
        t0 = time.perf_counter()
        # The local engine's inference model (batch norms folded) and precision: the same features, the same key.
        model, _ = inference_model(loaded.model, cfg["input_size"])
        pipeline_args = (dataset, cfg, model, config.batch_size, options, resources, precision)
        computed, startup = _run(ray, todo, writer, pipeline_args, progress, cancelled, resumed)
        seconds = time.perf_counter() - t0
    meta = {"key": key, "backbone": backbone_config.name, "weights": loaded.identity, "dataset": dataset_config.spec,
            "dataset_fingerprint": dataset.fingerprint, "input_size": list(cfg["input_size"]), "layer": config.layer,
            "device": f"ray: {options.workers} x {'GPU' if resources['num_gpus'] else 'CPU'} worker(s)",
            "engine": "ray", "workers": options.workers, "shard_rows": options.shard_rows,
            "precision": precision, "precision_label": PRECISION_LABELS[precision], "numerics": precision,
            "runtime": "torch", "path_choice": f"torch {precision} ({_why_precision(config.precision)})",
            # Wall time of the run, worker start-up included; `startup_seconds` is the part before the first batch.
            "images_per_s": computed / max(seconds, 1e-9), "compute_seconds": seconds, "startup_seconds": startup,
            "resumed_from": resumed, "rows_computed": computed}
    result = finish_shards(folder, key, dataset, ranges, meta)
    result.meta.update(cache_hit=False, from_cache=False, seconds=time.perf_counter() - started)
    return result

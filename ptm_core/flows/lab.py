"""The probe-vs-fine-tune lab as jobs: every method on the same data, backbone and split.

Each `run_*` takes frozen configs plus a JobContext, records its metrics for the run store (so
the Compare view can read every method's accuracy and time) and returns its full result.
`lab_spec(kind, request)` is the one place a page gets a method's job from: its key, title, work, kind and
whether a previous server's run is restored.
"""
from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass
from functools import partial
from typing import Callable

from ptm_core.base.messages import M_
from ptm_core.evals.baselines import PIXEL_SIZE, random_weights, run_pixel_baseline, run_random_weights_baseline
from ptm_core.base.configs import (FinetuneConfig, KNNConfig, ProbeConfig, ProjectionConfig, Source, describe_source,
                                   stable_hash)
from ptm_core.base.uploads import data_name
from ptm_core.data.registry import load_dataset
from ptm_core.features.featureset import FeatureSet
from ptm_core.features.extraction import extract
from ptm_core.finetune.finetuning import FinetuneResult, finetune, finetuned_features
from ptm_core.runs.jobs import DONE, JobContext, JobSpec
from ptm_core.runs.store import RunStore
from ptm_core.probes.knn import KNNResult, run_knn_probe
from ptm_core.evals.label_efficiency import finetune_runner, run_label_efficiency
from ptm_core.evals.layer_similarity import finetune_stage_cka, layer_matrix
from ptm_core.evals.layer_sweep import STAGES_SHARE, inner_vs_final, run_layer_sweep, stage_features
from ptm_core.evals.similarity import matched_cka
from ptm_core.probes.linear import ProbeResult, cached_linear_probe, sweep_message
from ptm_core.maps.projection import compute_projection
from ptm_core.flows.pairs import per_image

METHOD_LABELS = {
    "pixels": M_("Raw pixels (logistic regression)"),
    "random-probe": M_("Random-init backbone + linear probe"),
    "linear-probe": M_("Pretrained + linear probe"),
    "knn": M_("Pretrained + k-NN"),
    "finetune": M_("Fine-tune"),
}




@dataclass
class ProbesResult:
    features: FeatureSet
    linear: ProbeResult
    knn: KNNResult


def compute_seconds(*parts: float | None) -> float | None:
    """The compute time behind a number: the sum of its parts' original times; None if one is unknown."""
    return None if any(p is None for p in parts) else float(sum(parts))


def _record(ctx: JobContext, method: str, accuracy: float, seconds: float | None, from_cache: bool,
            started: float, image_size: int | None, **extra) -> None:
    """method_seconds: compute time of the runs that produced the number (a cache read keeps the original).

    The image size goes with every number: a fine-tune runs at its own size, the probes at the source's.
    """
    ctx.record(metrics={"method": method, "test_accuracy": accuracy, "method_seconds": seconds,
                        "from_cache": from_cache, "wall_seconds": time.perf_counter() - started,
                        "image_size": image_size, **extra})


def _per_image(result: ProbeResult | FinetuneResult, source: Source) -> dict:
    """A result's test images and which it got right (flows.pairs), against the source's labels."""
    return per_image(result.test_indices, result.predictions, load_dataset(source.dataset).labels)


def _sweep_progress(progress) -> Callable[[int, int], None]:
    return lambda done, total: progress(done / total, sweep_message(done, total))


def run_probes(source: Source, knn: KNNConfig, ctx: JobContext) -> ProbesResult:
    started = time.perf_counter()
    ctx.stage(M_("extracting features"))
    features = extract(source.dataset, source.backbone, source.extraction, ctx.scaled(0, 0.7), ctx.cancelled,
                       pace_pending=ctx.pace_pending)
    ctx.stage(M_("linear probe: sweeping C on a validation split"))
    linear = cached_linear_probe(features.features, features.labels, features.key, ProbeConfig(seed=source.split_seed),
                                 callback=_sweep_progress(ctx.scaled(0.7, 0.95)), cancelled=ctx.cancelled)
    ctx.stage(M_("linear probe: {accuracy:.3f}; k-NN (k={k}, T={T})", accuracy=linear.test_accuracy, k=knn.k,
                 T=knn.temperature))
    ctx.check_cancelled()
    neighbours = run_knn_probe(features.features, features.labels, dataclasses.replace(knn, seed=source.split_seed),
                               retrieval=True)
    ctx.stage(M_("k-NN: {accuracy:.3f}", accuracy=neighbours.test_accuracy))
    feature_seconds = features.meta.get("compute_seconds")
    _record(ctx, "linear-probe", linear.test_accuracy, compute_seconds(feature_seconds, linear.seconds),
            bool(features.meta.get("from_cache") or linear.from_cache), started, source.extraction.image_size,
            knn_accuracy=neighbours.test_accuracy, knn_seconds=compute_seconds(feature_seconds, neighbours.seconds),
            feature_seconds=feature_seconds, features_from_cache=bool(features.meta.get("from_cache")),
            probe_seconds=linear.seconds, probe_from_cache=linear.from_cache, best_C=linear.best_C,
            n_train=linear.n_train, **per_image(linear.test_indices, linear.predictions, features.labels),
            **per_image(neighbours.test_indices, neighbours.predictions, features.labels, prefix="knn_"))
    return ProbesResult(features, linear, neighbours)


def run_pixels(source: Source, ctx: JobContext) -> ProbeResult:
    started = time.perf_counter()
    ctx.stage(M_("raw pixels at {size}x{size} grey: logistic regression", size=PIXEL_SIZE))
    result = run_pixel_baseline(source.dataset, ProbeConfig(seed=source.split_seed),
                                callback=_sweep_progress(ctx.progress), cancelled=ctx.cancelled)
    _record(ctx, "pixels", result.test_accuracy, result.seconds, result.from_cache, started, PIXEL_SIZE,
            **_per_image(result, source))
    return result


def run_random_probe(source: Source, ctx: JobContext) -> ProbeResult:
    started = time.perf_counter()
    ctx.stage(M_("random-init backbone: extracting features"))
    result = run_random_weights_baseline(source.dataset, source.backbone, source.extraction,
                                         ProbeConfig(seed=source.split_seed), ctx.scaled(0, 0.9), ctx.cancelled)
    _record(ctx, "random-probe", result.test_accuracy, result.seconds, result.from_cache, started,
            source.extraction.image_size, **_per_image(result, source))
    return result


def _finetune_progress(ctx: JobContext, curves: dict[str, list]) -> Callable[[dict], None]:
    """The trainer's records as live curves and job progress; never raises (the trainer polls cancel)."""
    stages_seen: set[str] = set()

    def on_step(record: dict) -> None:
        phase = record.get("phase")
        if phase == "validate":
            curves["val_curve"].append({k: record.get(k) for k in ("epoch", "step", "val_accuracy")})
            ctx.progress(record["run_fraction"], M_("validated at step {step}: {accuracy:.3f}", step=record["step"],
                                                    accuracy=record["val_accuracy"]))
        elif phase == "train":
            curves["train_curve"].append({k: record.get(k) for k in ("epoch", "step", "train_loss", "loss", "lr_head")})
            if record["step"] == 1:
                ctx.stage(M_("fine-tuning: training"))
            total = max(record.get("total_steps") or 1, 1)
            ctx.progress(record["run_fraction"], M_("epoch {epoch}, step {step}/{total}, loss {loss:.3f}",
                                                    epoch=record["epoch"], step=record["step"], total=total,
                                                    loss=record["train_loss"]))
        elif phase == "linear-probe":
            if LP_STAGE not in stages_seen:  # its own stage, so its pace is not taken for training's
                stages_seen.add(LP_STAGE)
                ctx.stage(LP_STAGE)
            ctx.progress(record["run_fraction"], M_("{stage}: {step}", stage=LP_STAGE, step=record.get("message", "")),
                         step_end=record["step_end"])
    return on_step


LP_STAGE = M_("fitting the linear probe that initialises the head")


def run_finetune(source: Source, config: FinetuneConfig, ctx: JobContext) -> FinetuneResult:
    """Fine-tune with live curves: the job's metrics carry the curves while it runs.

    Cancel stops training at the next step; the best weights so far are kept, tested and recorded
    with stopped_early, and the job ends DONE. Cancelled in LP-FT's probe stage, it ends CANCELLED.
    """
    started = time.perf_counter()
    config = dataclasses.replace(config, split_seed=source.split_seed)
    curves: dict[str, list] = {"train_curve": [], "val_curve": []}
    ctx.record(metrics=curves)
    ctx.stage(M_("fine-tuning ({mode}, {epochs} epoch(s) at {size}px)", mode=config.mode, epochs=config.epochs,
                 size=config.image_size))
    result = finetune(source.dataset, source.backbone, config, on_step=_finetune_progress(ctx, curves),
                      cancelled=ctx.cancelled)
    _record(ctx, "finetune", result.test_accuracy, result.seconds, False, started, config.image_size, mode=config.mode,
            best_epoch=result.best_epoch, best_step=result.best_step, stopped_early=result.stopped_early,
            epochs=config.epochs, stopped_epoch=result.train_curve[-1]["epoch"] if result.train_curve else 0,
            lp_test_accuracy=result.lp_test_accuracy, **_per_image(result, source))
    ctx.record(artifacts={"checkpoint": result.checkpoint})
    if result.stopped_early:
        ctx.stage(M_("stopped early: best weights (epoch {epoch}, step {step}) kept, test accuracy {accuracy:.3f}",
                     epoch=result.best_epoch, step=result.best_step, accuracy=result.test_accuracy))
    return result


def run_label_efficiency_job(source: Source, knn: KNNConfig, with_finetune: bool,
                             finetune_config: FinetuneConfig, ctx: JobContext) -> list[dict]:
    ctx.stage(M_("features for the label-efficiency curve"))
    features = extract(source.dataset, source.backbone, source.extraction, ctx.scaled(0, 0.3), ctx.cancelled,
                       pace_pending=ctx.pace_pending)
    runner = finetune_runner(source.dataset, source.backbone, finetune_config, cancelled=ctx.cancelled) \
        if with_finetune else None
    rows = run_label_efficiency(features.features, features.labels, probe_config=ProbeConfig(seed=source.split_seed),
                                knn_config=dataclasses.replace(knn, seed=source.split_seed), finetune=runner,
                                progress=ctx.scaled(0.3, 1.0), cancelled=ctx.cancelled)
    table = [row.to_dict() for row in rows]
    ctx.record(metrics={"method": "label-efficiency", "rows": table})
    return table


LAYER_SWEEP_SHARE = 0.95  # of the layers job: the sweep; the CKA matrix takes the rest


def run_layers(source: Source, ctx: JobContext) -> dict:
    """The layer sweep's rows (every block, then the pooled pre-logit features), McNemar's test of the best inner
    layer against the final features when one scores higher, and linear CKA between every pair of layers."""
    ctx.stage(M_("features from every stage"))
    def progress(fraction: float, message: str = "") -> None:
        # Stage features and the per-stage probes go at different paces: estimate each step on its own.
        ctx.progress(LAYER_SWEEP_SHARE * fraction, message,
                     step_end=LAYER_SWEEP_SHARE * (STAGES_SHARE if fraction < STAGES_SHARE else 1.0))

    layers = run_layer_sweep(source.dataset, source.backbone, source.extraction, ProbeConfig(seed=source.split_seed),
                             progress, ctx.cancelled)
    results = [r.to_dict() for r in layers]
    ctx.record(metrics={"method": "layer-sweep", "rows": results})
    ctx.stage(M_("CKA between layers"))
    ctx.check_cancelled()
    stages = stage_features(source.dataset, source.backbone, source.extraction)  # the sweep's, from its cache
    matrix = layer_matrix(stages)
    return {"rows": results, "cka": matrix.to_dict(), "inner_vs_final": inner_vs_final(layers)}


def run_drift(source: Source, checkpoint: str, image_size: int, projection: ProjectionConfig,
              ctx: JobContext) -> dict:
    """The backbone's features before and after fine-tuning (same images, same size), each mapped to 2-D."""
    ctx.stage(M_("features before fine-tuning"))
    extraction = dataclasses.replace(source.extraction, image_size=image_size)
    before = extract(source.dataset, source.backbone, extraction, ctx.scaled(0, 0.35), ctx.cancelled,
                     pace_pending=ctx.pace_pending)
    ctx.stage(M_("features after fine-tuning"))
    after = finetuned_features(checkpoint, source.dataset, progress=ctx.scaled(0.35, 0.7), cancelled=ctx.cancelled)
    ctx.check_cancelled()  # the maps cannot stop part-way, and there is nothing to keep
    ctx.progress(0.7, M_("{method} of both", method=projection.method.upper()))
    maps = {"before": compute_projection(before.features, projection),
            "after": compute_projection(after.features, projection)}
    ctx.stage(M_("CKA of every stage, before vs after"))
    stage_cka = finetune_stage_cka(source.dataset, source.backbone, checkpoint, image_size, source.extraction,
                                   ctx.scaled(0.8, 1.0), ctx.cancelled)
    return {"maps": maps, "labels": before.labels, "class_names": before.class_names, "stage_cka": stage_cka,
            "pooled_cka": matched_cka(before, after).cka}


# The lab's methods as jobs: what a page asks for, and attaches to.
LAB_METHODS = ("probes", "pixels", "random", "finetune", "drift", "efficiency", "layers")
# Methods whose results read back from the caches after a server restart; the rest (fine-tuning, label
# efficiency, layers, drift) cache nothing and only run when asked.
RESTORED_METHODS = ("probes", "pixels", "random")


@dataclass(frozen=True)
class LabRequest:
    """One lab method's settings on one source; each method reads the settings it needs and ignores the rest."""

    source: Source
    knn: KNNConfig = KNNConfig()  # probes, label efficiency
    finetune: FinetuneConfig = FinetuneConfig()  # fine-tune; label efficiency with_finetune; drift (size, title)
    with_finetune: bool = False  # label efficiency: fine-tune at every budget too
    checkpoint: str | None = None  # drift: the fine-tuned weights


def job_key(kind: str, source: Source, parts: list) -> str:
    """The job key of one lab method on one source: the same settings find the same job."""
    return stable_hash(["lab", kind, source.key(), parts])


def random_source(source: Source) -> Source:
    """The random-init baseline's source: the same architecture, data and extraction without pretraining."""
    return Source(source.dataset, random_weights(source.backbone), source.extraction)


def finetune_title(source: Source, config: FinetuneConfig) -> str:
    """What produced a fine-tune's numbers: its mode, the data and backbone, and its own image size."""
    return M_("{what} · {source}", what=M_("fine-tune {mode}", mode=config.mode),
              source=describe_source(source.dataset, source.backbone, config.image_size))


def _method(kind: str, request: LabRequest) -> tuple[list, str, Callable[[JobContext], object]]:
    """(the settings that key the job besides the source, title, work) of one method."""
    source, ft = request.source, request.finetune
    if kind == "probes":
        return ([request.knn.key()], M_("{what} · {source}", what=M_("probes"), source=source.describe()),
                partial(run_probes, source, request.knn))
    if kind == "pixels":
        return ([], M_("{what} · {source}", what=M_("raw pixels ({size}×{size} grey)", size=PIXEL_SIZE),
                                 source=data_name(source.dataset.spec)),
                partial(run_pixels, source))
    if kind == "random":
        return ([], M_("{what} · {source}", what=M_("random-init probe"), source=random_source(source).describe()),
                partial(run_random_probe, source))
    if kind == "finetune":
        return [ft.key()], finetune_title(source, ft), partial(run_finetune, source, ft)
    if kind == "drift":
        return ([request.checkpoint], M_("{what} · {source}", what=M_("feature drift"), source=finetune_title(source, ft)),
                partial(run_drift, source, request.checkpoint, ft.image_size, ProjectionConfig(method="pca")))
    if kind == "efficiency":
        return ([request.with_finetune, ft.key() if request.with_finetune else None],
                M_("{what} · {source}", what=M_("label efficiency"), source=source.describe()),
                partial(run_label_efficiency_job, source, request.knn, request.with_finetune, ft))
    if kind == "layers":
        return [], M_("{what} · {source}", what=M_("layer sweep"), source=source.describe()), partial(run_layers, source)
    raise ValueError(f"unknown lab method {kind!r}; one of {', '.join(LAB_METHODS)}")


def lab_spec(kind: str, request: LabRequest) -> JobSpec:
    """The job of one lab method (`LAB_METHODS`): the same settings give the same key, so a page reattaches to it."""
    parts, title, work = _method(kind, request)
    return JobSpec(job_key(kind, request.source, parts), title, work, kind=f"lab-{kind}",
                   restore=kind in RESTORED_METHODS, config=job_config(kind, request, parts))


def job_config(kind: str, request: LabRequest, parts: list) -> dict:
    """What a lab job's record keeps as its config: the source, and for a fine-tune (or its drift) the fine-tune's own
    settings, with the size it ran at in place of the sidebar's extraction size (which it does not use)."""
    config = request.source.to_dict() | {"parts": parts}
    if kind in ("finetune", "drift"):
        ft = request.finetune
        config["extraction"] = config["extraction"] | {"image_size": ft.image_size}
        config["finetune"] = ft.to_dict()
    return config


def checkpoint_filename(source: Source, config: FinetuneConfig) -> str:
    """A fine-tune's checkpoint as a download names it: model, data, mode and size, e.g.
    'tf_efficientnet_lite0-digits-lpft-32px.safetensors' (its stored name is a cache key), file-system safe."""
    data = data_name(source.dataset.spec).rsplit(".zip", 1)[0]
    parts = [source.backbone.name, data, config.mode.replace("-", ""), f"{config.image_size}px"]
    stem = "-".join(re.sub(r"[^A-Za-z0-9_.]+", "_", part).strip("._") or "data" for part in parts)
    return f"{stem[:200]}.safetensors"


def source_runs(store: RunStore | None, source: Source, kind: str | None = None) -> list[dict]:
    """The finished (done) runs on this source, newest first; only one lab method's with `kind`."""
    if store is None:
        return []
    runs = store.runs(kind=f"lab-{kind}" if kind else None)
    return [r for r in runs if (r["config"] or {}).get("source_key") == source.key() and r["status"] == DONE]

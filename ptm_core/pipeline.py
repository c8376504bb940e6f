"""The explore flow as one job: features (cached) -> linear probe -> 2-D map."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ptm_core.artifacts import artifact_dir
from ptm_core.configs import (BackboneConfig, DatasetConfig, ExtractionConfig, ProbeConfig, ProjectionConfig,
                              describe_source, stable_hash)
from ptm_core.extraction import FeatureSet, extract
from ptm_core.faithfulness import map_faithfulness
from ptm_core.jobs import JobContext
from ptm_core.probes import ProbeResult, cached_linear_probe
from ptm_core.projection import project


@dataclass(frozen=True)
class ExploreRequest:
    dataset: DatasetConfig = DatasetConfig()
    backbone: BackboneConfig = BackboneConfig()
    extraction: ExtractionConfig = ExtractionConfig()
    probe: ProbeConfig = ProbeConfig()
    projection: ProjectionConfig = ProjectionConfig()

    def key(self) -> str:
        # Device and batch size change speed, not results, so they stay out of the key.
        steps = (self.dataset, self.backbone, self.probe, self.projection)
        return stable_hash(["explore", [s.key() for s in steps], self.extraction.image_size, self.extraction.layer])

    def to_dict(self) -> dict:
        return {name: getattr(self, name).to_dict() for name in ("dataset", "backbone", "extraction", "probe", "projection")}

    def title(self) -> str:
        return describe_source(self.dataset, self.backbone, self.extraction.image_size)


@dataclass
class ExploreResult:
    features: FeatureSet
    probe: ProbeResult
    coords: np.ndarray
    projection_meta: dict
    faithfulness: dict


def run_explore(request: ExploreRequest, ctx: JobContext) -> ExploreResult:
    ctx.stage("extracting features")
    features = extract(request.dataset, request.backbone, request.extraction,
                       progress=ctx.scaled(0.0, 0.8), cancelled=ctx.cancelled)
    source = "cache" if features.meta.get("cache_hit") else f"{features.meta.get('images_per_s', 0):.0f} img/s"
    ctx.stage(f"features ready: {features.features.shape[0]} x {features.features.shape[1]} ({source})")
    ctx.progress(0.8, "training the linear probe")
    step = ctx.scaled(0.8, 0.9)
    probe = cached_linear_probe(features.features, features.labels, features.key, request.probe,
                                callback=lambda done, total: step(done / total, f"probe sweep {done}/{total - 1}"))
    ctx.stage(f"linear probe: test accuracy {probe.test_accuracy:.3f} (C={probe.best_C:g})")
    ctx.progress(0.9, f"computing the {request.projection.method.upper()} map")
    coords, meta = project(features.features, features.key, request.projection)
    timing = "cache" if meta.get("cache_hit") else f"{meta['seconds']:.1f} s"
    ctx.stage(f"map ready ({timing}); measuring how faithful it is")
    faithfulness = map_faithfulness(features.features, coords[:, :2], features.labels, seed=request.projection.seed)
    ctx.record(
        metrics={"test_accuracy": probe.test_accuracy, "best_C": probe.best_C, "n_train": probe.n_train,
                 "n_test": probe.n_test, "probe_seconds": probe.seconds, "n_images": int(features.features.shape[0]),
                 "feature_dim": int(features.features.shape[1]), "images_per_s": features.meta.get("images_per_s"),
                 "features_from_cache": bool(features.meta.get("cache_hit")), "map_seconds": meta.get("seconds"),
                 "trustworthiness": faithfulness["trustworthiness"]},
        artifacts={"features": str(artifact_dir("features") / f"{features.key}.npz"), "feature_key": features.key})
    return ExploreResult(features, probe, coords, meta, faithfulness)

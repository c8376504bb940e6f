"""Two feature sets of the same images (two models, pretrained vs random, two sizes), point by point."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ptm_core.configs import BackboneConfig, DatasetConfig, ExtractionConfig, describe_source, stable_hash
from ptm_core.errors import PTMError
from ptm_core.extraction import FeatureSet, extract
from ptm_core.jobs import JobContext
from ptm_core.neighbours import knn_sets, most_disagreeing, sets_agreement


@dataclass(frozen=True)
class CompareRequest:
    dataset: DatasetConfig
    backbone_a: BackboneConfig
    extraction_a: ExtractionConfig
    backbone_b: BackboneConfig
    extraction_b: ExtractionConfig
    k: int = 10

    def key(self) -> str:
        sides = [[b.key(), e.image_size, e.layer] for b, e in self.sides()]
        return stable_hash(["compare", self.dataset.key(), sides, self.k])

    def sides(self) -> list[tuple[BackboneConfig, ExtractionConfig]]:
        return [(self.backbone_a, self.extraction_a), (self.backbone_b, self.extraction_b)]

    def titles(self) -> list[str]:
        return [describe_source(self.dataset, b, e.image_size) for b, e in self.sides()]

    def title(self) -> str:
        a, b = (f"{b.name} ({b.weights}) @ {e.image_size or 'default '}px" for b, e in self.sides())
        return f"{a} vs {b} on {self.dataset.spec}" + (f" (limit {self.dataset.limit})" if self.dataset.limit else "")


@dataclass
class Comparison:
    """Per image: Jaccard overlap of its k-NN sets in A and B, and the share of those neighbours of its class."""

    agreement: np.ndarray
    same_class_a: np.ndarray
    same_class_b: np.ndarray
    k: int

    def most_disagreeing(self, n: int = 20) -> np.ndarray:
        return most_disagreeing(self.agreement, n)


def compare_neighbourhoods(a: FeatureSet, b: FeatureSet, k: int = 10) -> Comparison:
    if a.ids != b.ids:
        raise PTMError("The two feature sets are not of the same images; compare on one dataset and limit.")
    sets_a, sets_b = knn_sets(a.features, k), knn_sets(b.features, k)
    same_a = (a.labels[sets_a] == a.labels[:, None]).mean(axis=1)
    same_b = (b.labels[sets_b] == b.labels[:, None]).mean(axis=1)
    return Comparison(sets_agreement(sets_a, sets_b), same_a.astype(np.float32), same_b.astype(np.float32), k)


@dataclass
class CompareResult:
    request: CompareRequest
    a: FeatureSet
    b: FeatureSet
    comparison: Comparison


def run_compare(request: CompareRequest, ctx: JobContext) -> CompareResult:
    features = []
    for i, (backbone, extraction) in enumerate(request.sides()):
        ctx.stage(f"extracting features {'AB'[i]}: {request.titles()[i]}")
        features.append(extract(request.dataset, backbone, extraction, progress=ctx.scaled(0.45 * i, 0.45 * (i + 1)),
                                cancelled=ctx.cancelled))
    ctx.check_cancelled()
    ctx.progress(0.9, f"comparing each image's {request.k} nearest neighbours in A and B")
    comparison = compare_neighbourhoods(*features, k=request.k)
    ctx.record(metrics={"mean_agreement": float(comparison.agreement.mean()),
                        "same_class_a": float(comparison.same_class_a.mean()),
                        "same_class_b": float(comparison.same_class_b.mean()), "k": request.k},
               artifacts={"feature_key_a": features[0].key, "feature_key_b": features[1].key})
    return CompareResult(request, features[0], features[1], comparison)

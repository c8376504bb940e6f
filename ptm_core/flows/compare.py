"""Two feature sets of the same images (two models, pretrained vs random, two sizes), point by point."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from ptm_core.base.messages import M_
from ptm_core.base.configs import DatasetConfig, ProbeConfig, Source, describe_data, describe_weights, stable_hash
from ptm_core.base.errors import PTMError
from ptm_core.base.stats import PairedTest
from ptm_core.evals.similarity import CKAResult, matched_cka
from ptm_core.features.featureset import FeatureSet
from ptm_core.features.extraction import extract
from ptm_core.runs.jobs import JobContext, JobSpec
from ptm_core.flows.pairs import probes_test
from ptm_core.maps.neighbours import knn_sets, sets_agreement
from ptm_core.probes.linear import ProbeResult, cached_linear_probe


@dataclass(frozen=True)
class CompareRequest:
    """The same images through two sources: A and B differ only in backbone, weights or image size."""

    a: Source
    b: Source
    k: int = 10

    def __post_init__(self) -> None:
        if self.a.dataset != self.b.dataset:
            raise PTMError("Compare needs the same images on both sides: one dataset, limit and seed.")

    @property
    def dataset(self) -> DatasetConfig:
        return self.a.dataset

    def key(self) -> str:
        return stable_hash(["compare", self.a.key(), self.b.key(), self.k])

    def sides(self) -> tuple[Source, Source]:
        return self.a, self.b

    def titles(self) -> list[str]:
        return [side.describe() for side in self.sides()]

    def title(self) -> str:
        a, b = (M_("{model} ({weights}) @ {size}", model=s.backbone.name, weights=describe_weights(s.backbone),
                   size=M_("{size}px", size=s.extraction.image_size) if s.extraction.image_size else M_("default size"))
                for s in self.sides())
        return M_("{a} vs {b} on {data}", a=a, b=b, data=describe_data(self.dataset))

    def to_dict(self) -> dict:
        return {"a": self.a.to_dict(), "b": self.b.to_dict(), "k": self.k}


@dataclass
class Comparison:
    """Per image: Jaccard overlap of its k-NN sets in A and B, and the share of those neighbours of its class."""

    agreement: np.ndarray
    same_class_a: np.ndarray
    same_class_b: np.ndarray
    k: int

    def most_disagreeing(self, n: int = 20, seed: int = 0) -> np.ndarray:
        """Lowest agreement first; among equal agreement, the largest same-class gap between A and B first.

        On small k many images tie at agreement 0, and a tie broken by row number would list rows 0, 1, 2...
        What still ties after the gap is ordered by a seeded shuffle.
        """
        gap = np.abs(self.same_class_a - self.same_class_b)
        shuffle = np.random.default_rng(seed).permutation(len(self.agreement))
        return np.lexsort((shuffle, -gap, self.agreement))[:max(0, n)]


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
    # The same linear probe (split, seed, C sweep) on A's and on B's features, and McNemar's test of the two.
    probes: tuple[ProbeResult, ProbeResult] | None = None
    probe_test: PairedTest | None = None
    cka: CKAResult | None = None  # linear CKA of A and B on the images both hold (Kornblith et al. 2019)


def run_compare(request: CompareRequest, ctx: JobContext) -> CompareResult:
    features = []
    for i, side in enumerate(request.sides()):
        ctx.stage(M_("extracting features {side}: {source}", side="AB"[i], source=side.describe()))
        features.append(extract(side.dataset, side.backbone, side.extraction,
                                progress=ctx.scaled(0.45 * i, 0.45 * (i + 1)), cancelled=ctx.cancelled,
                                pace_pending=ctx.pace_pending))
    ctx.check_cancelled()
    ctx.progress(0.9, M_("comparing each image's {k} nearest neighbours in A and B", k=request.k))
    comparison = compare_neighbourhoods(*features, k=request.k)
    similarity = matched_cka(*features, seed=request.dataset.seed)
    probes = []
    for i, fs in enumerate(features):
        ctx.progress(0.92 + 0.04 * i, M_("linear probe on {side}", side="AB"[i]))
        probes.append(cached_linear_probe(fs.features, fs.labels, fs.key, ProbeConfig(seed=request.a.split_seed),
                                          cancelled=ctx.cancelled))
    test = probes_test(features[0].labels, *probes)
    ctx.record(metrics={"mean_agreement": float(comparison.agreement.mean()),
                        "same_class_a": float(comparison.same_class_a.mean()),
                        "same_class_b": float(comparison.same_class_b.mean()), "k": request.k,
                        "probe": test.to_dict(), "linear_cka": similarity.cka, "cka_n": similarity.n},
               artifacts={"feature_key_a": features[0].key, "feature_key_b": features[1].key})
    return CompareResult(request, features[0], features[1], comparison, tuple(probes), test, similarity)


def compare_spec(request: CompareRequest) -> JobSpec:
    """The comparison job of `request` in the compute lane; restored after a server restart (both feature sets
    read back from the cache)."""
    return JobSpec(request.key(), request.title(), partial(run_compare, request), kind="compare", restore=True,
                   config=request.to_dict())

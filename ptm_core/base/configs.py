"""One frozen dataclass per step of a run; `key()` is a stable hash used as its cache key."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from ptm_core.base.uploads import data_name
from ptm_core.base.messages import M_, join


def stable_hash(payload: object, length: int = 16) -> str:
    """Hash of a JSON-serialisable payload that is identical across processes and machines."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


class Keyed:
    def key(self) -> str:
        return stable_hash({"type": type(self).__name__, **dataclasses.asdict(self)})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DatasetConfig(Keyed):
    spec: str = "mnist5k"
    limit: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class BackboneConfig(Keyed):
    name: str = "tf_efficientnet_lite0"
    weights: str = "bundled"  # bundled | hub | random | a local file path
    seed: int = 0  # init seed for `random` weights


PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class ExtractionConfig(Keyed):
    image_size: int | None = None  # None: the model's own default input size
    batch_size: int = 32  # small enough that Cancel acts within about a second at 224 px on a CPU
    device: str = "auto"
    layer: str = "pre_logits"
    # auto: fp32, or bf16 where the device computes it natively and it measured clearly faster; the precision
    # that ran is in the feature cache key and the features' meta (ptm_core/models/extraction_path.py).
    precision: str = "auto"
    # auto: the fastest measured on this machine of PyTorch and OpenVINO (a CPU, where installed). fp32 features
    # are equal between the two (a shared cache key); bf16 ones are not (a key per runtime).
    runtime: str = "auto"


PROBE_SOLVERS = ("torch", "sklearn")
# Half-decade steps over the old 1e-3..10 decades: the batched torch sweep fits these 9 in less time
# than one sklearn fit per C took for 5 (benchmarks/probe_sweep.py).
PROBE_CS = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)
# How the probe reads its validation curve (ptm_core/probes/c_choice.py): "one-se", the smallest C within one
# standard error of the best validation accuracy; "best", the argmax.
PROBE_C_RULES = ("one-se", "best")
# How far past the grid's edge the sweep may go while the choice sits on it: DINOv2's logistic-regression range.
PROBE_C_LIMITS = (1e-6, 1e5)


@dataclass(frozen=True)
class ProbeConfig(Keyed):
    seed: int = 0
    test_size: float = 0.2
    val_size: float = 0.2
    Cs: tuple[float, ...] = PROBE_CS
    max_iter: int = 1000
    # torch: every C at once as a batch of heads (ptm_core.probes.sweep); sklearn: one Pipeline per C.
    # Part of the key: the two agree to a tolerance, not bit for bit.
    solver: str = "torch"
    # Both change which C is kept, so both are in the key: a cache written under another rule is never read back.
    c_rule: str = "one-se"
    c_limits: tuple[float, float] | None = PROBE_C_LIMITS  # None: keep to Cs


@dataclass(frozen=True)
class ProjectionConfig(Keyed):
    method: str = "umap"
    n_neighbors: int = 15
    min_dist: float = 0.1
    metric: str = "euclidean"
    seed: int = 0
    n_components: int = 2  # 2 or 3
    reproducible: bool = True  # seeded, single-threaded: the same map every time; False: UMAP unseeded, all cores
    perplexity: float = 30.0  # t-SNE only
    pca_dims: int | None = None  # PCA pre-reduction before UMAP/t-SNE; None: off
    fit_max: int | None = None  # fit on a seeded subsample of this many points; None: the method's default
    # UMAP layout epochs. umap-learn picks 500 below 10k points, 200 above; 200 for 5k x 1280 MNIST features
    # kept trustworthiness (0.862 vs 0.864) and map kNN accuracy (0.738 vs 0.734) at half the time (2.6 vs 5.6 s).
    n_epochs: int | None = 200


@dataclass(frozen=True)
class KNNConfig(Keyed):
    """Weighted k-NN on L2-normalised features as in DINO (Caron et al., 2021)."""

    k: int = 20
    temperature: float = 0.07
    seed: int = 0  # split seed: the same train/test split as ProbeConfig with this seed
    test_size: float = 0.2


FINETUNE_MODES = ("full", "last-n", "lp-ft", "scratch")


@dataclass(frozen=True)
class FinetuneConfig(Keyed):
    mode: str = "lp-ft"  # full | last-n | lp-ft | scratch
    epochs: int = 1
    lr_head: float = 1e-3
    lr_backbone: float = 1e-4
    batch_size: int = 32
    image_size: int = 96
    weight_decay: float = 0.05
    augment: bool = True  # RandomResizedCrop + horizontal flip
    warmup_fraction: float = 0.1
    last_n: int = 2  # trainable blocks/stages in last-n mode
    seed: int = 0  # init of the new head and data order
    val_size: float = 0.2  # carved from train; 0 trains without validation (keeps the last weights)
    val_every_steps: int = 200  # also validate mid-epoch on long epochs
    # Batch-norm running statistics: None = frozen for lp-ft (its head was fit on features under these
    # statistics; on a shifted domain such as MNIST, batch statistics would scramble them), updated otherwise.
    freeze_bn_stats: bool | None = None
    split_seed: int = 0  # the probes' ProbeConfig.seed: same train/test split as the probes
    test_size: float = 0.2
    precision: str = "auto"  # auto: fp32, or bf16 autocast where native and measured faster (training.training_precision)



def describe_weights(backbone: BackboneConfig) -> str:
    if backbone.weights in ("bundled", "hub"):
        return {"bundled": M_("bundled"), "hub": M_("hub")}[backbone.weights]
    if backbone.weights == "random":
        return M_("random init, seed {seed}", seed=backbone.seed)
    return M_("file {name}", name=backbone.weights.replace(chr(92), "/").rsplit("/", 1)[-1])


def describe_data(dataset: DatasetConfig) -> str:
    """The data as titles name it: an uploaded zip by its file's name (base.uploads), never its storage path."""
    name = data_name(dataset.spec)
    if dataset.limit:
        return M_("{spec} (limit {limit})", spec=name, limit=dataset.limit)
    return name


def describe_source(dataset: DatasetConfig, backbone: BackboneConfig, image_size: int | None) -> str:
    """The one-line name a run is shown under: model (weights) on data (limit) @ size."""
    size = M_("{size}px", size=image_size) if image_size else M_("default size")
    return M_("{model} ({weights}) on {data} @ {size}", model=backbone.name, weights=describe_weights(backbone),
              data=describe_data(dataset), size=size)


@dataclass(frozen=True)
class Source:
    """What produces a feature set: the data, the backbone and how its images are fed in.

    The explore, compare and lab flows all start from one (compare from two), with one key rule.
    """

    dataset: DatasetConfig = DatasetConfig()
    backbone: BackboneConfig = BackboneConfig()
    extraction: ExtractionConfig = ExtractionConfig()

    def key(self) -> str:
        # Device and batch size change speed, not results, so they stay out of the key. Precision changes
        # results a little; the default (auto) leaves the key as it was, so earlier runs keep their keys.
        parts = ["source", self.dataset.key(), self.backbone.key(), self.extraction.image_size, self.extraction.layer]
        if self.extraction.precision != "auto":
            parts.append(self.extraction.precision)
        return stable_hash(parts)

    @property
    def split_seed(self) -> int:
        return self.dataset.seed

    def to_dict(self) -> dict:
        return {"dataset": self.dataset.to_dict(), "backbone": self.backbone.to_dict(),
                "extraction": self.extraction.to_dict(), "source_key": self.key()}

    def describe(self) -> str:
        return describe_source(self.dataset, self.backbone, self.extraction.image_size)


def describe_map(config: ProjectionConfig) -> str:
    """A map's method and the settings that shape it, e.g. 'UMAP 2-D (15 neighbours, min dist 0.10, euclidean)'."""
    name = {"umap": "UMAP", "pca": "PCA", "tsne": "t-SNE"}.get(config.method, config.method)
    settings = {"umap": [M_("{n} neighbours", n=config.n_neighbors), M_("min dist {d:.2f}", d=config.min_dist),
                         config.metric],
                "tsne": [M_("perplexity {p:g}", p=config.perplexity), config.metric]}.get(config.method, [])
    if config.method != "pca" and not config.reproducible:
        settings.append(M_("unseeded"))
    if not settings:
        return M_("{name} {dims}-D", name=name, dims=config.n_components)
    return M_("{name} {dims}-D ({settings})", name=name, dims=config.n_components, settings=join(settings))

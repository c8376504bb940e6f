"""Where the network looks: class activation maps (the `grad-cam` package) on the backbone the features came from.

Two targets. "probe": the linear probe's predicted class, as a torch module backbone -> pooled pre-logit features ->
the probe's standardiser -> its logistic-regression layer, so the map is of the very decision the app shows.
"similarity": for a neighbour pair, the cosine similarity of the image's pooled features to the neighbour's
(the grad-cam tutorial's `SimilarityToConceptTarget`, Gildenblat, "Pixel attribution for embeddings"; version 1.5.7
of the package does not ship it, so `SimilarityTarget` is its four lines). Methods: Grad-CAM (Selvaraju et al.,
ICCV 2017), Score-CAM (Wang et al., CVPR Workshops 2020), EigenCAM (Muhammad and Yeasin, IJCNN 2020; the first
principal component of the activations: it ignores the target).

The layer is the one whose activations the features pool (the output of `forward_features`): for EfficientNet and
MobileNet that is `bn2` after `conv_head` (timm's `feature_info` ends a stage earlier, at `blocks.6`, whose channels
the features never see); for SqueezeNet the last fire module. Images go through the extraction's own preprocessing
(timm's data config at the features' image size, `BatchTransform`), so the map is of the image the features came from.
"""
from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from ptm_core.base.configs import BackboneConfig, Keyed, ProbeConfig
from ptm_core.base.errors import PTMError
from ptm_core.data.types import Dataset
from ptm_core.features.extraction import data_config
from ptm_core.features.featureset import FeatureSet
from ptm_core.models.precision import BatchTransform
from ptm_core.models.weights import LoadedBackbone, load_backbone
from ptm_core.probes.linear import ProbeResult

# pytorch_grad_cam is imported when a map is drawn: it brings OpenCV and matplotlib (over a second to import).
METHODS = {"gradcam": "GradCAM", "scorecam": "ScoreCAM", "eigencam": "EigenCAM"}
METHOD_NAMES = {"gradcam": "Grad-CAM", "scorecam": "Score-CAM", "eigencam": "EigenCAM"}
TARGETS = ("probe", "similarity")
SCORE_CAM_BATCH = 32  # Score-CAM runs one forward pass per channel of the layer (1,280 for lite0), this many at once
_LOCK = threading.Lock()  # the CAM classes hook the shared model: one map at a time per process


@dataclass(frozen=True)
class CamConfig(Keyed):
    method: str = "gradcam"  # gradcam | scorecam | eigencam
    target: str = "probe"  # probe (its predicted class) | similarity (to a neighbour's pooled features)
    image_size: int | None = None  # None: the size the features were extracted at
    seed: int = 0  # torch's generator during the map; the sanity check's randomised weights take it too

    def check(self) -> None:
        if self.method not in METHODS:
            raise PTMError(f"Unknown CAM method '{self.method}'; use one of {', '.join(METHODS)}.")
        if self.target not in TARGETS:
            raise PTMError(f"Unknown CAM target '{self.target}'; use one of {', '.join(TARGETS)}.")


@dataclass
class CamResult:
    heat: np.ndarray  # H x W float32 in [0, 1], at the model's input size
    overlay: np.ndarray  # H x W x 3 uint8: the heat map (jet) over `image`
    image: np.ndarray  # H x W x 3 uint8: the image the model saw (after its resize and centre crop)
    method: str  # its name: Grad-CAM, Score-CAM, EigenCAM
    target: str  # probe | similarity
    row: int
    backbone: str
    weights: str  # the weights' identity (bundled:<sha>, random:seed=0, ...)
    image_size: int
    layer: str  # the module whose activations the map weighs
    grid: tuple[int, int]  # that layer's spatial size: the map's real resolution before upsampling
    seconds: float  # the map alone, without loading the model
    predicted: int | None = None  # probe target: the class the probe predicts for the row
    probability: float | None = None  # ... and its probability
    other: int | None = None  # similarity target: the neighbour's row
    similarity: float | None = None  # ... and the cosine similarity of the two rows' features

    def describe_target(self) -> str:
        if self.target == "probe":
            return f"the probe's predicted class: {self.predicted} (p = {self.probability:.2f})"
        return f"similarity to neighbour #{self.other} (cosine {self.similarity:.2f})"


class SimilarityTarget:
    """Cosine similarity of a model's output to a fixed vector (the grad-cam tutorial's SimilarityToConceptTarget)."""

    def __init__(self, features: torch.Tensor):
        self.features = features

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cosine_similarity(model_output, self.features, dim=0)


class Embedder(nn.Module):
    """An image batch to the pooled pre-logit features, exactly as extraction takes them."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # precision.pre_logits's very expression, without its inference mode: the maps need gradients.
        return self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True).flatten(1).float()


class ProbeHead(nn.Module):
    """The probe as torch layers: (x - mean) / scale, then its logistic regression's logits."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: np.ndarray):
        super().__init__()
        if coef.shape[0] == 1:  # binary: sklearn keeps one row; softmax of (-z/2, z/2) is its sigmoid(z)
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        self.linear = nn.Linear(coef.shape[1], coef.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(torch.as_tensor(coef))
            self.linear.bias.copy_(torch.as_tensor(intercept))
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((x - self.mean) / self.scale)


def _owns_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def target_layer(model: nn.Module, input_size) -> tuple[str, nn.Module, tuple[int, int]]:
    """(name, module, spatial size) of the layer whose activations the pooled features are taken from."""
    outputs: dict[str, torch.Tensor] = {}
    hooks = [module.register_forward_hook(lambda _m, _i, out, name=name: outputs.__setitem__(name, out))
             for name, module in model.named_modules() if name]
    try:
        with torch.no_grad():
            final = model.forward_features(torch.zeros(1, *input_size))
    finally:
        for hook in hooks:
            hook.remove()
    if not isinstance(final, torch.Tensor) or final.ndim != 4:
        raise PTMError(f"{type(model).__name__} gives no spatial feature map (a transformer's tokens?); class "
                       f"activation maps here need a convolutional backbone.")
    modules = dict(model.named_modules())
    # Several nested modules hand back the same tensor (bn2, its activation); the deepest that has weights names it.
    names = [name for name, out in outputs.items() if out is final and _owns_parameters(modules[name])]
    if not names:  # the last op was functional: fall back on timm's last stage
        names = [model.feature_info[-1]["module"]]
    name = max(names, key=lambda n: n.count("."))
    return name, modules[name], tuple(final.shape[-2:])


@functools.lru_cache(maxsize=2)
def cam_backbone(config: BackboneConfig) -> LoadedBackbone:
    """The backbone for maps, loaded once per process for each of the last two configs (a copy of its own: the
    gradients stop at the CAM layer, see `only_layer_learns`)."""
    return load_backbone(config)


def only_layer_learns(model: nn.Module, layer: nn.Module) -> None:
    """Gradients flow from the target back to `layer` and stop there: Grad-CAM needs no more, and it halves the work."""
    model.requires_grad_(False)
    layer.requires_grad_(True)


def preprocess(model: nn.Module, image_size: int | None) -> BatchTransform:
    """The extraction's transform for `model` at `image_size` (timm's eval resize, centre crop, mean and std)."""
    return BatchTransform(data_config(model, image_size))


def model_input(transform: BatchTransform, image: Image.Image) -> tuple[torch.Tensor, np.ndarray]:
    """(1 x C x H x W normalised batch, H x W x 3 uint8 RGB of what the model sees)."""
    pixels = transform(image.convert("RGB"))
    return transform.stack([pixels]).contiguous(), pixels.permute(1, 2, 0).numpy().copy()


def run_cam(model: nn.Module, layer: nn.Module, batch: torch.Tensor, target, method: str = "gradcam",
            seed: int = 0) -> np.ndarray:
    """H x W float32 in [0, 1]: `method`'s map of `target` (a grad-cam target) over `layer`, for one image."""
    CamConfig(method=method).check()
    with _LOCK:
        torch.manual_seed(seed)
        import pytorch_grad_cam

        with getattr(pytorch_grad_cam, METHODS[method])(model=model, target_layers=[layer]) as cam:
            cam.batch_size = SCORE_CAM_BATCH
            heat = cam(input_tensor=batch, targets=[target])[0]
    return np.clip(np.nan_to_num(heat.astype(np.float32)), 0.0, 1.0)


def overlay(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """The heat map in the jet colours, half over the image (uint8 RGB)."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    return show_cam_on_image(image.astype(np.float32) / 255, heat, use_rgb=True, image_weight=0.5)


_HEADS: dict[tuple, ProbeHead] = {}


def probe_head(fs: FeatureSet, probe: ProbeResult, config: ProbeConfig) -> tuple[ProbeHead, np.ndarray]:
    """The probe as torch layers, and its classes. A ProbeResult keeps predictions, not the fitted model, so the
    refit on its train split at its chosen C is redone here with sklearn (StandardScaler + LogisticRegression, as
    the probe's pipeline) and kept for the process; the target class stays the probe's own prediction."""
    key = (fs.key, config.key(), probe.best_C)
    if key not in _HEADS:
        train = np.setdiff1d(np.arange(len(fs.labels)), probe.test_indices)
        pipe = make_pipeline(StandardScaler(), LogisticRegression(C=probe.best_C, max_iter=config.max_iter))
        pipe.fit(fs.features[train], fs.labels[train])
        scaler, logistic = pipe[0], pipe[-1]
        if len(_HEADS) >= 4:
            _HEADS.pop(next(iter(_HEADS)))
        _HEADS[key] = ProbeHead(scaler.mean_, scaler.scale_, logistic.coef_, logistic.intercept_)
        _HEADS[key].classes = logistic.classes_
    return _HEADS[key], _HEADS[key].classes


def dataset_row(dataset: Dataset, fs: FeatureSet, row: int) -> int:
    """The dataset's index of feature row `row` (found by its id), or a one-line PTMError."""
    if not 0 <= int(row) < len(fs.ids):
        raise PTMError(f"Row {row} is out of range: these features have rows 0 to {len(fs.ids) - 1}.")
    try:
        return dataset.ids.index(fs.ids[int(row)])
    except ValueError:
        raise PTMError(f"Image {fs.ids[int(row)]} is no longer in the dataset.") from None


def _check_source(fs: FeatureSet, backbone: BackboneConfig) -> None:
    if fs.meta.get("layer", "pre_logits") != "pre_logits":
        raise PTMError(f"These features come from layer {fs.meta['layer']}; maps are drawn for the pooled "
                       f"pre-logit features only.")
    if fs.meta.get("backbone", backbone.name) != backbone.name:
        raise PTMError(f"These features come from {fs.meta['backbone']}, not {backbone.name}.")


def class_target(column: int):
    """grad-cam's target for output `column` of a classifier (its logit)."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    return ClassifierOutputTarget(column)


def _model_and_target(fs: FeatureSet, probe: ProbeResult | None, probe_config: ProbeConfig, backbone: nn.Module,
                      row: int, config: CamConfig, other: int | None) -> tuple[nn.Module, object, dict]:
    """The module the map differentiates, its grad-cam target, and what the target is (for CamResult)."""
    embed = Embedder(backbone)
    if config.target == "probe":
        if probe is None or probe.all_predictions is None:
            raise PTMError("A map of the probe's prediction needs a probe fitted on these features.")
        head, classes = probe_head(fs, probe, probe_config)
        predicted = int(probe.all_predictions[row])
        column = int(np.searchsorted(classes, predicted))
        facts = dict(predicted=predicted, probability=float(probe.all_confidence[row]))
        return nn.Sequential(embed, head), class_target(column), facts
    if other is None:
        raise PTMError("A similarity map needs a second image: the neighbour to compare with.")
    if not 0 <= int(other) < len(fs.ids):
        raise PTMError(f"Row {other} is out of range: these features have rows 0 to {len(fs.ids) - 1}.")
    a, b = fs.features[row].astype(np.float64), fs.features[int(other)].astype(np.float64)
    cosine = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
    target = SimilarityTarget(torch.as_tensor(fs.features[int(other)], dtype=torch.float32))
    return embed, target, dict(other=int(other), similarity=cosine)


def feature_cam(dataset: Dataset, fs: FeatureSet, backbone_config: BackboneConfig, row: int,
                config: CamConfig = CamConfig(), probe: ProbeResult | None = None,
                probe_config: ProbeConfig = ProbeConfig(), other: int | None = None) -> CamResult:
    """The map of feature row `row` of `fs` (features of `dataset` by `backbone_config`'s backbone): for the probe's
    predicted class, or (`config.target` "similarity") for its similarity to row `other`.

    Unknown method or target, a row out of range, a backbone that cannot be loaded: one-line PTMErrors."""
    config.check()
    index = dataset_row(dataset, fs, row)
    _check_source(fs, backbone_config)
    size = config.image_size or (fs.meta.get("input_size") or [None])[-1]
    loaded = cam_backbone(backbone_config)
    transform = preprocess(loaded.model, size)
    batch, image = model_input(transform, dataset.image(index, transform.resize_side))
    name, layer, grid = target_layer(loaded.model, batch.shape[1:])
    model, target, facts = _model_and_target(fs, probe, probe_config, loaded.model, int(row), config, other)
    only_layer_learns(model, layer)
    started = time.perf_counter()
    heat = run_cam(model, layer, batch, target, config.method, config.seed)
    return CamResult(heat, overlay(image, heat), image, METHOD_NAMES[config.method], config.target, int(row),
                     backbone_config.name, loaded.identity, int(batch.shape[-1]), name, grid,
                     time.perf_counter() - started, **facts)

"""The backbone catalog (timm's pretrained models) and a model card per backbone."""
from __future__ import annotations

import fnmatch
import functools
from dataclasses import asdict, dataclass

import timm

from ptm_core.models.bundled import BUNDLED, build_model
from ptm_core.models.weights import check_model_name, weights_availability

DEFAULT_BACKBONE = "tf_efficientnet_lite0"  # bundled: the app's first run needs no network
COMPARE_BACKBONE = "tf_efficientnet_lite1"  # Compare's default B: another real, bundled backbone than A's default


@functools.lru_cache(maxsize=32)
def catalog(filter_glob: str = "") -> list[str]:
    """Names of timm models with pretrained weights, optionally filtered by a glob (`*vit*`): the bundled zoo
    first (a bundled model timm has no hub weights for is listed too), then timm's."""
    pattern = filter_glob or ""
    if pattern and not any(ch in pattern for ch in "*?["):
        pattern = f"*{pattern}*"
    zoo = [name for name in BUNDLED if fnmatch.fnmatchcase(name, pattern or "*")]
    return zoo + [name for name in timm.list_models(pattern, pretrained=True) if name not in zoo]


@dataclass(frozen=True)
class ModelCard:
    name: str
    architecture: str
    parameters: int
    feature_dim: int
    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str
    crop_pct: float
    weights: str  # bundled / in local hub cache / download needed

    def to_dict(self) -> dict:
        return asdict(self)


@functools.lru_cache(maxsize=64)
def model_card(name: str) -> ModelCard:
    """Build the architecture (no weights download) and read off its facts."""
    check_model_name(name)
    model = build_model(name)  # as the bundled weights need it (head size, preprocessing), if it has them
    cfg = timm.data.resolve_model_data_config(model)
    return ModelCard(
        name=name,
        architecture=timm.models.split_model_name_tag(name)[0],
        parameters=sum(p.numel() for p in model.parameters()),
        feature_dim=int(model.num_features),
        input_size=tuple(cfg["input_size"]),
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
        interpolation=str(cfg["interpolation"]),
        crop_pct=float(cfg["crop_pct"]),
        weights=weights_availability(name),
    )


def bundled_zoo() -> list[dict]:
    """Every backbone whose weights are here offline: what they are, where from, under what terms, and its size."""
    rows = []
    for name, entry in BUNDLED.items():
        card = model_card(name)
        rows.append({"name": name, "weights": entry.weights, "imagenet_head": entry.imagenet_head,
                     "family": entry.family, "params_m": round(card.parameters / 1e6, 2),
                     "feature_dim": card.feature_dim, "num_classes": entry.num_classes,
                     "class_names": entry.class_names, "input_size": card.input_size[1],
                     "package": entry.package, "version": entry.version, "licence": entry.licence})
    return rows

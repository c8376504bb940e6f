"""The backbone catalog (timm's pretrained models) and a model card per backbone."""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import timm

from ptm_core.models.weights import BUNDLED_ARCHITECTURE, check_model_name, weights_availability

DEFAULT_BACKBONE = BUNDLED_ARCHITECTURE


@functools.lru_cache(maxsize=32)
def catalog(filter_glob: str = "") -> list[str]:
    """Names of timm models with pretrained weights, optionally filtered by a glob (`*vit*`)."""
    pattern = filter_glob or ""
    if pattern and not any(ch in pattern for ch in "*?["):
        pattern = f"*{pattern}*"
    return timm.list_models(pattern, pretrained=True)


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
    model = timm.create_model(name, pretrained=False)
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

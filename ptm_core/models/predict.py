"""What a pretrained model thinks an image is: its classifier's top classes, named, with their probabilities.

The image goes through the model's own eval preprocessing (timm's data config of the loaded model, so a bundled
entry's own size, mean and std included); the class names are the head's: ImageNet-1k's (the synset files that
ship with timm) for an ImageNet head, the entry's own for a bundled head trained on other classes. A head whose
class names are not known here, random weights and a model without a head are refused in one line.
"""
from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import timm
import torch
from PIL import Image

from ptm_core.base.configs import BackboneConfig
from ptm_core.base.messages import M_
from ptm_core.base.errors import PTMError
from ptm_core.data.files import read_user_file
from ptm_core.data.ingest import ensure_allowed
from ptm_core.data.imaging import ImageRejected, open_rgb, resize_problem
from ptm_core.models.bundled import IMAGENET_1K, head_class_names, require_bundled
from ptm_core.models.precision import resize_side
from ptm_core.models.weights import LoadedBackbone, load_backbone

DEFAULT_TOP = 5


@dataclass(frozen=True)
class Guess:
    index: int
    label: str
    probability: float


@dataclass(frozen=True)
class Prediction:
    top: tuple[Guess, ...]
    backbone: str
    weights: str  # as asked: bundled, hub, a file
    weights_identity: str  # what they were: bundled:<sha256 prefix>, hub:<repo>, file:<sha256 prefix>
    image_size: int  # the side the model saw, after its eval resize and centre crop
    classes: str  # where the class names come from
    seconds: float  # the forward pass and its preprocessing, without loading the model

    def to_dict(self) -> dict:
        return {**asdict(self), "top": [asdict(guess) for guess in self.top]}


@dataclass(frozen=True)
class Classifier:
    loaded: LoadedBackbone
    labels: tuple[str, ...]
    classes: str
    data_config: dict


def _class_names(config: BackboneConfig, loaded: LoadedBackbone) -> tuple[tuple[str, ...], str]:
    """The names of the head's classes in output order, and where they come from; or a one-line refusal."""
    model, name = loaded.model, config.name
    if not getattr(model, "num_classes", 0):
        raise PTMError(f"{name} has no classifier head to predict with.")
    if config.weights == "bundled":
        entry = require_bundled(name)
        names, source = head_class_names(entry), entry.class_names
    else:
        subset = timm.data.infer_imagenet_subset(model)  # from the pretrained tag and the head's size
        names = tuple(timm.data.ImageNetInfo(subset).label_descriptions()) if subset else None
        source = IMAGENET_1K if subset == "imagenet-1k" else f"{subset} (timm's class list)"
    if names is None or len(names) != model.num_classes:
        raise PTMError(f"{name}'s head has {model.num_classes} outputs whose class names are not known here, so it "
                       f"cannot say what an image is; it still works as a feature extractor.")
    return names, source


@functools.lru_cache(maxsize=2)
def classifier(config: BackboneConfig) -> Classifier:
    """The model with its head and class names, loaded once per process for each of the last two configs."""
    if config.weights == "random":  # refused before loading anything
        raise PTMError(f"Random weights have no trained classifier to ask; predict with --weights bundled "
                       f"(or hub) for {config.name}.", "Random weights have no trained classifier to ask; pick "
                       "Bundled or Hugging Face hub weights.")
    loaded = load_backbone(config)
    labels, classes = _class_names(config, loaded)
    return Classifier(loaded, labels, classes, timm.data.resolve_model_data_config(loaded.model))


def predict_image(config: BackboneConfig, image: Image.Image | np.ndarray, top: int = DEFAULT_TOP) -> Prediction:
    """The head's `top` most probable classes for one image (RGB, or anything PIL converts to RGB)."""
    if top < 1:
        raise PTMError(f"--top must be at least 1, got {top}.")
    clf = classifier(config)
    picture = Image.fromarray(np.asarray(image)) if isinstance(image, np.ndarray) else image
    problem = resize_problem(picture.width, picture.height, resize_side(clf.data_config))
    if problem is not None:
        raise ImageRejected(M_("The image is {problem}.", problem=problem))
    started = time.perf_counter()
    transform = timm.data.create_transform(**clf.data_config, is_training=False)
    with torch.inference_mode():
        logits = clf.loaded.model(transform(picture.convert("RGB")).unsqueeze(0))[0]
    probabilities = torch.softmax(logits.float(), dim=0)
    values, indices = probabilities.topk(min(top, probabilities.numel()))
    guesses = tuple(Guess(int(i), clf.labels[int(i)], float(p)) for p, i in zip(values, indices))
    return Prediction(guesses, config.name, config.weights, clf.loaded.identity,
                      int(clf.data_config["input_size"][-1]), clf.classes, time.perf_counter() - started)


def read_image(path: str | Path) -> Image.Image:
    """One image file, read as every user file is (inside the allowed folders, a regular file within the size
    limit) and decoded to RGB; a missing, oversized or corrupt file is a one-line PTMError naming it."""
    resolved = ensure_allowed(path, "--image")
    try:
        data, _ = read_user_file(resolved)
        return open_rgb(data)
    except PTMError as exc:
        raise PTMError(f"Cannot use the image {path}: {exc}") from None


def predict_file(config: BackboneConfig, path: str | Path, top: int = DEFAULT_TOP) -> Prediction:
    return predict_image(config, read_image(path), top)


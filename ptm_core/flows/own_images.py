"""The "your images" step (issue 24): a few classes of a user's own photos, each named by them, and what three kinds
of features make of them: raw pixels, the best bundled backbone with random init, and the same backbone pretrained.

Each kind gets a linear probe scored by cross-validation (evals/few_shot: leave-one-out for a few dozen photos),
every photo predicted by a probe that never saw it, with Wilson's interval and McNemar's test of pretrained against
each other kind on those same predictions; a 2-D PCA map of each (instant at 30 points, and a map whose axes mean
the same run to run); and a probe per kind trained on every photo, which `classify` asks about a new one.

Privacy: the photos, their features, the class names and every prediction live only in the returned objects, which
the page keeps in its browser session's state; nothing is written under the data folder, no feature cache, no job
or run record (the Jobs page is shared between sessions), and it all goes when the session does.
The result has the shape of flows/tour.ContrastResult (.rows, .row(kind), .tests, .labels, .class_names), so the
tour's captions and maps read both.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from PIL import Image
from sklearn.pipeline import Pipeline

from ptm_core.base.configs import BackboneConfig, ProjectionConfig, describe_map
from ptm_core.base.errors import PTMError
from ptm_core.base.messages import M_, Message
from ptm_core.base.stats import PairedTest
from ptm_core.data.photos import ARRIVAL_SIDE, photo_from_bytes
from ptm_core.evals.baselines import PIXEL_SIZE, pixel_row, random_weights
from ptm_core.evals.few_shot import cross_validated, fit_probe, versus
from ptm_core.features.photos import input_side, photo_features
from ptm_core.flows.tour import ContrastRow
from ptm_core.maps.projection import compute_projection

KINDS = ("pixels", "random", "pretrained")
MIN_CLASSES, MAX_CLASSES = 2, 5
MIN_PHOTOS = 5  # per class: leave-one-out then trains on at least 4 of each
MAX_PHOTOS = 50  # per class: 5 x 50 photos of at most ARRIVAL_SIDE px is ~150 MB of one session's memory
NAME_MAX = 40
# ImageNet-1k top-1 (single 224-260 px centre crop) of the bundled entries with an ImageNet head, as their makers
# report them: EfficientNet-Lite0/1/2 75.1 / 76.7 / 77.6 % (Google's EfficientNet-Lite README, tensorflow/tpu),
# SqueezeNet 1.1 58.2 % (torchvision's model table). The bundled MobileNetV2 has a dog-breed head: no top-1 to rank.
IMAGENET_TOP1 = {"tf_efficientnet_lite0": 75.1, "tf_efficientnet_lite1": 76.7, "tf_efficientnet_lite2": 77.6,
                 "squeezenet1_1": 58.2}
# The best of them by that number. Measured on 2 quiet cores (benchmarks/own_images_speed.py, RESULTS.md "your
# images"): 3 classes x 10 photos from bytes to the three numbers in 2.6 s warm with lite2 against 1.7 s with lite0
# (3.1 and 2.6 s the first time), both well inside the 10 s target, so the better backbone is affordable; on a
# saturated machine (load 3-7) lite2 took up to 13.8 s.
BACKBONE = BackboneConfig(max(IMAGENET_TOP1, key=IMAGENET_TOP1.get), "bundled")
MAP = ProjectionConfig(method="pca")
# Seconds per photo for the two backbone passes and the rest, on 2 quiet cores (the benchmark above: 2.6 s for 30):
# the estimate the page shows before Learn; measured, not promised.
SECONDS_PER_PHOTO, SECONDS_FIXED = 0.08, 0.5

ProgressFn = Callable[[float, Message], None]
log = logging.getLogger(__name__)
_WARMING = threading.Lock()
_warm_started = False


@dataclass(kw_only=True)
class OwnRow(ContrastRow):
    """One feature kind on the user's photos, scored out of fold (every photo a test image once): a tour contrast
    row (its Wilson interval on the n_test photos, its summary) with how it was scored and what it predicted."""

    scheme: Message
    predictions: np.ndarray  # out-of-fold class index per photo
    probabilities: np.ndarray  # out of fold, photos x classes

    @property
    def n(self) -> int:
        return self.n_test


@dataclass
class OwnResult:
    class_names: list[str]
    labels: np.ndarray
    backbone: BackboneConfig
    seed: int
    map_title: Message
    rows: list[OwnRow] = field(default_factory=list)
    # Pretrained (a) against "random" and "pixels" (b): McNemar's exact test on the same photos' predictions.
    tests: dict[str, PairedTest] = field(default_factory=dict)
    models: dict[str, Pipeline] = field(default_factory=dict)  # per kind, trained on every photo: for classify
    seconds: float = 0.0

    def row(self, kind: str) -> OwnRow:
        return next(r for r in self.rows if r.kind == kind)


def check_classes(classes: Sequence[tuple[str, int]]) -> list[str]:
    """The class names, trimmed, given (name, number of photos) per class; or a one-line PTMError for the first
    problem: too few or too many classes, a missing or repeated name, too few or too many photos in a class."""
    if len(classes) < MIN_CLASSES:
        raise PTMError(M_("Learning needs at least {min} classes; there is {n}. Add a class and its photos.",
                          min=MIN_CLASSES, n=len(classes)))
    if len(classes) > MAX_CLASSES:
        raise PTMError(M_("At most {max} classes; there are {n}. Remove one.", max=MAX_CLASSES, n=len(classes)))
    names, seen = [], {}
    for number, (raw, count) in enumerate(classes, 1):
        name = " ".join(str(raw).split())
        if not name:
            raise PTMError(M_("Class {number} has no name: type what its photos show.", number=number))
        if len(name) > NAME_MAX:
            raise PTMError(M_("Class {number}'s name is over {max} characters; shorten it.", number=number,
                              max=NAME_MAX))
        if name.casefold() in seen:
            raise PTMError(M_("Classes {first} and {number} are both named “{name}”: give each its own name.",
                              first=seen[name.casefold()], number=number, name=name))
        seen[name.casefold()] = number
        if count < MIN_PHOTOS:
            raise PTMError(M_("“{name}” has {n} of the {min} photos each class needs: add {more} more.", name=name,
                              n=count, min=MIN_PHOTOS, more=MIN_PHOTOS - count))
        if count > MAX_PHOTOS:
            raise PTMError(M_("“{name}” has {n} photos, over the {max} a class keeps: remove {fewer}.", name=name,
                              n=count, max=MAX_PHOTOS, fewer=count - MAX_PHOTOS))
        names.append(name)
    return names


def learn_estimate_seconds(n_photos: int) -> float:
    """Seconds `learn` should take on 2 cores for this many photos, warm model (SECONDS_PER_PHOTO)."""
    return SECONDS_FIXED + SECONDS_PER_PHOTO * n_photos


def kind_backbone(kind: str, backbone: BackboneConfig, seed: int) -> BackboneConfig:
    """The pretrained backbone, or the same architecture with random init seeded by `seed`."""
    return random_weights(dataclasses.replace(backbone, seed=seed)) if kind == "random" else backbone


def describe_kind(kind: str, backbone: BackboneConfig, seed: int) -> Message:
    """What produced a kind's features, in words (the backbone's choice and why, for the pretrained one)."""
    if kind == "pixels":
        return M_("{size}×{size} grey pixels of your photos", size=PIXEL_SIZE)
    size = input_side(backbone)
    if kind == "random":
        return M_("{model} (random init, seed {seed}) at {size} px, its eval transform", model=backbone.name,
                  seed=seed, size=size)
    top1 = IMAGENET_TOP1.get(backbone.name)
    if top1 is None:
        return M_("{model} (bundled) at {size} px, its eval transform", model=backbone.name, size=size)
    return M_("{model} (bundled ImageNet weights; the bundled backbone with the best ImageNet top-1, {top1} %) at "
              "{size} px, its eval transform", model=backbone.name, top1=top1, size=size)


def kind_features(kind: str, images: Sequence[Image.Image], backbone: BackboneConfig, seed: int,
                  progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    if kind == "pixels":
        return np.stack([pixel_row(image) for image in images])
    return photo_features(kind_backbone(kind, backbone, seed), list(images), progress)


def learn(classes: Sequence[tuple[str, Sequence[Image.Image]]], seed: int = 0, backbone: BackboneConfig = BACKBONE,
          progress: ProgressFn | None = None) -> OwnResult:
    """The three kinds' cross-validated probes, their tests and maps, and a probe per kind on every photo."""
    names = check_classes([(name, len(images)) for name, images in classes])
    started = time.perf_counter()
    images = [image for _name, photos in classes for image in photos]
    labels = np.repeat(np.arange(len(classes)), [len(photos) for _name, photos in classes])
    result = OwnResult(names, labels, backbone, seed, describe_map(MAP))
    features, scores = {}, {}
    report = progress or (lambda fraction, message: None)
    for i, kind in enumerate(KINDS):
        report(i / 3, M_("{kind}: features", kind=kind))
        kind_started = time.perf_counter()
        features[kind] = kind_features(kind, images, backbone, seed, lambda done, total, i=i, kind=kind: report(
            (i + 0.8 * done / total) / 3, M_("{kind}: features of {done}/{total} photos", kind=kind, done=done,
                                             total=total)))
        report((i + 0.8) / 3, M_("{kind}: linear probe, cross-validated", kind=kind))
        score = scores[kind] = cross_validated(features[kind], labels, seed)
        result.models[kind] = fit_probe(features[kind], labels, seed)
        result.rows.append(OwnRow(kind=kind, produced_by=describe_kind(kind, backbone, seed), accuracy=score.accuracy,
                                  n_test=score.n, seconds=time.perf_counter() - kind_started, scheme=score.scheme,
                                  predictions=score.predictions, probabilities=score.probabilities))
    result.tests = versus(scores, "pretrained")
    report(0.97, M_("maps"))
    for kind in KINDS:
        result.row(kind).coords = compute_projection(features[kind], dataclasses.replace(MAP, seed=seed))
    result.seconds = time.perf_counter() - started
    report(1.0, M_("done"))
    return result


def learn_from_bytes(classes: Sequence[tuple[str, Sequence[tuple[bytes, str]]]], seed: int = 0,
                     backbone: BackboneConfig = BACKBONE, progress: ProgressFn | None = None) -> OwnResult:
    """`learn` from the photos' bytes as they arrive (name, [(bytes, file name)]): decoding included, as the
    benchmark times it from upload to the three numbers."""
    decoded = [(name, [photo_from_bytes(data, file) for data, file in photos]) for name, photos in classes]
    return learn(decoded, seed, backbone, progress)


def warm_up(backbone: BackboneConfig = BACKBONE, seed: int = 0) -> None:
    """Both models loaded (batch norms folded) and one small image through each, so a first Learn neither loads
    nor prepares kernels: measured, a fresh process's first Learn takes several seconds longer than the next."""
    image = Image.new("RGB", (64, 64), (128, 128, 128))
    for kind in ("pretrained", "random"):
        kind_features(kind, [image], backbone, seed)


def warm_up_in_background() -> None:
    """`warm_up` once per process, in a daemon thread: the page starts it when the first photo arrives, while the
    user is still taking the rest."""
    global _warm_started
    with _WARMING:
        if _warm_started:
            return
        _warm_started = True

    def run() -> None:
        try:
            warm_up()
        except Exception:  # a missing weights package says so again, in one line, when Learn asks
            log.warning("warming up the own-images models failed", exc_info=True)

    threading.Thread(target=run, name="own-images-warm-up", daemon=True).start()


def classify(result: OwnResult, image: Image.Image) -> dict[str, dict[str, float]]:
    """Each kind's class probabilities for a new photo (probes trained on every photo): kind -> {class: p}, in the
    classes' order."""
    if max(image.size) > ARRIVAL_SIDE:  # as every photo is on arrival, so a new one is seen alike
        image = image.copy()
        image.thumbnail((ARRIVAL_SIDE, ARRIVAL_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    out = {}
    for kind in KINDS:
        x = kind_features(kind, [image.convert("RGB")], result.backbone, result.seed)
        model = result.models[kind]
        p = np.zeros(len(result.class_names))
        p[model.classes_] = model.predict_proba(x)[0]
        out[kind] = dict(zip(result.class_names, p.tolist()))
    return out

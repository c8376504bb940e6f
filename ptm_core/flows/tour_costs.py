"""What each tour step costs, estimated from its plan alone before anything runs (shown on its button)."""
from __future__ import annotations

from ptm_core.base.configs import DatasetConfig
from ptm_core.evals.baselines import PIXEL_SIZE
from ptm_core.flows.tour import TourPlan
from ptm_core.maps.estimate import estimate_seconds
from ptm_core.base.messages import M_

# Rough costs on a 2-core CPU, for the estimate shown before a step's first run (caches make reruns quick).
EXTRACT_IMAGES_PER_S_128 = 235.0  # tf_efficientnet_lite0 forward at 128 px, fp32, channels_last
MODEL_LOAD_SECONDS = 2.0
PROBE_SECONDS = 2.0
PIXEL_SECONDS_PER_IMAGE = 1e-3  # decode, grey and resize to 32x32 (raw pixels); not measured, small beside the rest
TRAIN_COST = 7.0  # forward + backward + update + validation, relative to a forward pass (step 5's time: benchmarks/RESULTS.md)


def _extract_seconds(n: int, size: int) -> float:
    return MODEL_LOAD_SECONDS + n * (size / 128) ** 2 / EXTRACT_IMAGES_PER_S_128


# The features each phase computes, as the step's progress line names them (translated in the interface).
KINDS = {"pixels": M_("pixels"), "random": M_("random init"), "pretrained": M_("pretrained")}


def dataset_size(dataset: DatasetConfig) -> int:
    """Images in a built-in set from its spec alone (no loading): the limit, shapes' n, or MNIST-5k's 5,000."""
    options = dict(part.split("=") for part in dataset.spec.partition(":")[2].split(",") if "=" in part)
    return dataset.limit or int(options.get("n", 5000))


def _contrast_phases(plan: TourPlan, n: int) -> list[tuple[str, float]]:
    maps = [estimate_seconds(n, dim, plan.projection, include_compile=first)  # a compile is paid once
            for first, dim in ((True, PIXEL_SIZE ** 2), (False, 1280), (False, 1280))]
    extract = _extract_seconds(n, plan.image_size)
    pixels, random, pretrained = KINDS["pixels"], KINDS["random"], KINDS["pretrained"]
    return [(M_("{kind}: features", kind=pixels), PIXEL_SECONDS_PER_IMAGE * n),
            (M_("{kind}: linear probe", kind=pixels), PROBE_SECONDS),
            (M_("{kind}: features", kind=random), extract), (M_("{kind}: linear probe", kind=random), PROBE_SECONDS),
            (M_("{kind}: features", kind=pretrained), extract),
            (M_("{kind}: linear probe", kind=pretrained), PROBE_SECONDS),
            (M_("{kind}: map", kind=pixels), maps[0]), (M_("{kind}: map", kind=random), maps[1]),
            (M_("{kind}: map", kind=pretrained), maps[2])]


def step_phases(plan: TourPlan, step: str) -> list[tuple[str, float]]:
    """(what, seconds) of each phase of a step from nothing cached, in the order its work enters them (one phase per
    `ctx.stage` call of tour.py's step; tests/test_tour_clock.py checks the counts agree)."""
    shapes, digits = dataset_size(plan.shapes), dataset_size(plan.digits)
    if step == "neighbours":
        return [(M_("extracting features"), _extract_seconds(shapes, plan.image_size))]
    if step in ("shapes", "digits"):
        return _contrast_phases(plan, shapes if step == "shapes" else digits)
    if step == "efficiency":  # each: its features (cached by steps 2-3 when they ran) and a probe per label draw
        draws = 0.5 * len(plan.ks) * len(plan.seeds)
        return [(M_("{kind} on {data}", kind=KINDS[kind], data=data.spec), _extract_seconds(n, plan.image_size) + draws)
                for data, n in ((plan.shapes, shapes), (plan.digits, digits)) for kind in ("pretrained", "pixels")]
    if step == "zoo":  # step 2's backbone is cached by then; the others are bigger or smaller, about alike
        extract = len(plan.zoo) * _extract_seconds(shapes, plan.image_size) / max(len(_zoo(plan)), 1)
        return [phase for backbone in _zoo(plan)
                for phase in ((M_("{kind}: features", kind=backbone.name), extract),
                              (M_("{kind}: linear probe", kind=backbone.name), PROBE_SECONDS))]
    if step == "lesson":  # two extractions and two probes; a probe's sweep grows with its training images
        n = dataset_size(plan.lesson)
        return [phase for kind in ("pretrained", "random") for phase in (
            (M_("{kind}: features", kind=KINDS[kind]), _extract_seconds(n, plan.image_size)),
            (M_("{kind}: linear probe", kind=KINDS[kind]), PROBE_SECONDS * n / 1000))]
    if step != "finetune":
        raise ValueError(f"unknown tour step {step!r}")
    n_train = plan.finetune_limit * (1 - plan.finetune.test_size) * (1 - plan.finetune.val_size)
    per_image = (plan.finetune.image_size / 128) ** 2 / EXTRACT_IMAGES_PER_S_128
    return [(M_("fine-tuning: loading the model"), MODEL_LOAD_SECONDS),
            (M_("fitting the linear probe"), plan.finetune_limit * per_image + PROBE_SECONDS),
            (M_("fine-tuning: training"), plan.finetune.epochs * n_train * per_image * TRAIN_COST)]


def _zoo(plan: TourPlan) -> list:
    return list(dict.fromkeys((plan.backbone, *plan.zoo)))


def estimate_step_seconds(plan: TourPlan, step: str) -> float:
    """Seconds a step takes from nothing cached on the reference machine (the sum of its phases); an estimate, shown
    before the user starts it, scaled by this machine's pace (tour_clock.pace_factor) where the page shows it."""
    return sum(seconds for _what, seconds in step_phases(plan, step))

"""What each tour step costs, estimated from its plan alone before anything runs (shown on its button)."""
from __future__ import annotations

from ptm_core.base.configs import DatasetConfig
from ptm_core.evals.baselines import PIXEL_SIZE
from ptm_core.flows.tour import TourPlan
from ptm_core.maps.estimate import estimate_seconds

# Rough costs on a 2-core CPU, for the estimate shown before a step's first run (caches make reruns quick).
EXTRACT_IMAGES_PER_S_128 = 235.0  # tf_efficientnet_lite0 forward at 128 px, fp32, channels_last
MODEL_LOAD_SECONDS = 2.0
PROBE_SECONDS = 2.0
PIXEL_SECONDS_PER_IMAGE = 1e-3  # decode, grey and resize to 32x32 (raw pixels); not measured, small beside the rest
TRAIN_COST = 7.0  # forward + backward + update + validation, relative to a forward pass (step 5's time: benchmarks/RESULTS.md)


def _extract_seconds(n: int, size: int) -> float:
    return MODEL_LOAD_SECONDS + n * (size / 128) ** 2 / EXTRACT_IMAGES_PER_S_128


def dataset_size(dataset: DatasetConfig) -> int:
    """Images in a built-in set from its spec alone (no loading): the limit, shapes' n, or MNIST-5k's 5,000."""
    options = dict(part.split("=") for part in dataset.spec.partition(":")[2].split(",") if "=" in part)
    return dataset.limit or int(options.get("n", 5000))


def _contrast_phases(plan: TourPlan, n: int) -> list[tuple[str, float]]:
    maps = [estimate_seconds(n, dim, plan.projection, include_compile=first)  # a compile is paid once
            for first, dim in ((True, PIXEL_SIZE ** 2), (False, 1280), (False, 1280))]
    extract = _extract_seconds(n, plan.image_size)
    return [("pixels: features", PIXEL_SECONDS_PER_IMAGE * n), ("pixels: linear probe", PROBE_SECONDS),
            ("random: features", extract), ("random: linear probe", PROBE_SECONDS),
            ("pretrained: features", extract), ("pretrained: linear probe", PROBE_SECONDS),
            ("pixels: map", maps[0]), ("random: map", maps[1]), ("pretrained: map", maps[2])]


def step_phases(plan: TourPlan, step: str) -> list[tuple[str, float]]:
    """(what, seconds) of each phase of a step from nothing cached, in the order its work enters them (one phase per
    `ctx.stage` call of tour.py's step; tests/test_tour_clock.py checks the counts agree)."""
    shapes, digits = dataset_size(plan.shapes), dataset_size(plan.digits)
    if step == "neighbours":
        return [("extracting features", _extract_seconds(shapes, plan.image_size))]
    if step in ("shapes", "digits"):
        return _contrast_phases(plan, shapes if step == "shapes" else digits)
    if step == "efficiency":  # each: its features (cached by steps 2-3 when they ran) and a probe per label draw
        draws = 0.5 * len(plan.ks) * len(plan.seeds)
        return [(f"{kind} on {data.spec}", _extract_seconds(n, plan.image_size) + draws)
                for data, n in ((plan.shapes, shapes), (plan.digits, digits)) for kind in ("pretrained", "pixels")]
    if step == "zoo":  # step 2's backbone is cached by then; the others are bigger or smaller, about alike
        extract = len(plan.zoo) * _extract_seconds(shapes, plan.image_size) / max(len(_zoo(plan)), 1)
        return [phase for backbone in _zoo(plan)
                for phase in ((f"{backbone.name}: features", extract), (f"{backbone.name}: linear probe", PROBE_SECONDS))]
    if step == "lesson":  # two extractions and two probes; a probe's sweep grows with its training images
        n = dataset_size(plan.lesson)
        return [phase for kind in ("pretrained", "random") for phase in (
            (f"{kind}: features", _extract_seconds(n, plan.image_size)),
            (f"{kind}: linear probe", PROBE_SECONDS * n / 1000))]
    if step != "finetune":
        raise ValueError(f"unknown tour step {step!r}")
    n_train = plan.finetune_limit * (1 - plan.finetune.test_size) * (1 - plan.finetune.val_size)
    per_image = (plan.finetune.image_size / 128) ** 2 / EXTRACT_IMAGES_PER_S_128
    return [("fine-tuning: loading the model", MODEL_LOAD_SECONDS),
            ("fitting the linear probe", plan.finetune_limit * per_image + PROBE_SECONDS),
            ("fine-tuning: training", plan.finetune.epochs * n_train * per_image * TRAIN_COST)]


def _zoo(plan: TourPlan) -> list:
    return list(dict.fromkeys((plan.backbone, *plan.zoo)))


def estimate_step_seconds(plan: TourPlan, step: str) -> float:
    """Seconds a step takes from nothing cached on the reference machine (the sum of its phases); an estimate, shown
    before the user starts it, scaled by this machine's pace (tour_clock.pace_factor) where the page shows it."""
    return sum(seconds for _what, seconds in step_phases(plan, step))

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
TRAIN_COST = 7.0  # forward + backward + update + validation, relative to a forward pass (step 5's time: benchmarks/RESULTS.md)


def _extract_seconds(n: int, size: int) -> float:
    return MODEL_LOAD_SECONDS + n * (size / 128) ** 2 / EXTRACT_IMAGES_PER_S_128


def dataset_size(dataset: DatasetConfig) -> int:
    """Images in a built-in set from its spec alone (no loading): the limit, shapes' n, or MNIST-5k's 5,000."""
    options = dict(part.split("=") for part in dataset.spec.partition(":")[2].split(",") if "=" in part)
    return dataset.limit or int(options.get("n", 5000))


def estimate_step_seconds(plan: TourPlan, step: str) -> float:
    """Seconds a step takes from nothing cached; an estimate, shown before the user starts it."""
    shapes, digits = dataset_size(plan.shapes), dataset_size(plan.digits)
    if step == "neighbours":
        return _extract_seconds(shapes, plan.image_size)
    if step in ("shapes", "digits"):
        n = shapes if step == "shapes" else digits
        maps = sum(estimate_seconds(n, dim, plan.projection, include_compile=first)  # a compile is paid once
                   for first, dim in ((True, PIXEL_SIZE ** 2), (False, 1280), (False, 1280)))
        return 2 * _extract_seconds(n, plan.image_size) + 3 * PROBE_SECONDS + maps
    if step == "efficiency":
        return 2 * _extract_seconds(shapes + digits, plan.image_size) + 0.5 * len(plan.ks) * len(plan.seeds) * 4
    if step == "zoo":  # step 2's backbone is cached by then; the others are bigger or smaller, about alike
        return len(plan.zoo) * (_extract_seconds(shapes, plan.image_size) + PROBE_SECONDS)
    if step == "lesson":  # two extractions and two probes; a probe's sweep grows with its training images
        n = dataset_size(plan.lesson)
        return 2 * _extract_seconds(n, plan.image_size) + 2 * PROBE_SECONDS * n / 1000
    n_train = plan.finetune_limit * (1 - plan.finetune.test_size) * (1 - plan.finetune.val_size)
    per_image = (plan.finetune.image_size / 128) ** 2 / EXTRACT_IMAGES_PER_S_128
    return (_extract_seconds(plan.finetune_limit, plan.finetune.image_size) + PROBE_SECONDS
            + plan.finetune.epochs * n_train * per_image * TRAIN_COST)

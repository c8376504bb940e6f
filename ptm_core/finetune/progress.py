"""Where a fine-tuning run stands as one fraction, by the images it processes.

Counting only optimiser steps left validations, the test pass and LP-FT's probe stage out of the
progress: the bar sat at 0 % through the probe and the time left ran short by the evaluation.
Here every part is weighted by images processed, a training image counting TRAIN_COST times an
evaluated one (forward, backward, augmentation), so the fraction moves at a steady pace.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ptm_core.finetune.training import planned_validations, val_interval

StepFn = Callable[[dict], None]
TRAIN_COST = 3.0
PROBE_FEATURES_SHARE = 0.7  # of LP-FT's probe stage: the features; the C sweep takes the rest


@dataclass(frozen=True)
class RunPlan:
    probe_units: float  # LP-FT: one forward pass over every image for the probe's features; else 0
    step_units: float
    validation_units: float
    total_units: float  # probe + training + validations + the test pass

    @property
    def probe_share(self) -> float:
        return self.probe_units / max(self.total_units, 1e-9)

    def fraction(self, steps: int, validations: int) -> float:
        done = self.probe_units + steps * self.step_units + validations * self.validation_units
        return min(done / max(self.total_units, 1e-9), 1.0)


def plan_run(*, lp_ft: bool, n_images: int, batch_size: int, steps_per_epoch: int, epochs: int, n_val: int,
             n_test: int, val_every_steps: int) -> RunPlan:
    total_steps = epochs * steps_per_epoch
    n_validations = planned_validations(total_steps, steps_per_epoch, val_interval(total_steps, val_every_steps)) \
        if n_val else 0
    probe, step, validation = (n_images if lp_ft else 0), TRAIN_COST * batch_size, float(n_val)
    return RunPlan(probe, step, validation, probe + total_steps * step + n_validations * validation + n_test)


def probe_reporter(on_step: StepFn | None, plan: RunPlan) -> Callable[[float, str], None]:
    """The LP stage's progress as "linear-probe" records whose run_fraction moves through [0, probe_share].

    step_end is the run fraction where the current sub-step (features, then the C sweep) ends: their
    paces differ, so neither says how long the other or the training will take.
    """
    share = plan.probe_share

    def report(fraction: float, message: str = "") -> None:
        if on_step is not None:
            sub_end = PROBE_FEATURES_SHARE if fraction < PROBE_FEATURES_SHARE else 1.0
            on_step({"phase": "linear-probe", "epoch": 0, "step": 0, "total_steps": 0, "train_loss": None,
                     "fraction": fraction, "run_fraction": share * fraction, "step_end": share * sub_end,
                     "message": message})
    return report


def with_run_fraction(on_step: StepFn | None, plan: RunPlan) -> StepFn | None:
    """Training and validation records with run_fraction: the whole run's progress after them."""
    if on_step is None:
        return None
    validations = [0]

    def emit(record: dict) -> None:
        validations[0] += record.get("phase") == "validate"
        on_step(dict(record, run_fraction=plan.fraction(record.get("step", 0), validations[0])))
    return emit

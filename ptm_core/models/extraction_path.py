"""Which runtime and precision computes a run's features.

The candidates are the pairs this machine runs natively (PyTorch, and OpenVINO on a CPU; fp32, and bf16 where
the hardware has it and the user allows it with `--precision auto`); with more than one ready, the fastest by
measurement wins (ptm_core.models.calibration). The pair that ran is a fact of the run: its precision goes into the
feature key (as `Pair.numerics`), the meta, `--json` and the label beside img/s.

OpenVINO needs a converted model (seconds, once per model and weights: models.openvino). Where `auto` has
none yet and the run is big enough to pay for it, the conversion runs in a child process beside the run;
OpenVINO then takes over at the next batch only where it gives the same numbers as the PyTorch batches before
it (fp32), and otherwise is ready for the next run, which measures it.
"""
from __future__ import annotations

import copy
import functools
import logging
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ptm_core.base.messages import M_
from ptm_core.models import calibration

from ptm_core.models import openvino as openvino_runtime
from ptm_core.models.calibration import Pair
from ptm_core.base.capabilities import capabilities
from ptm_core.base.configs import BackboneConfig, ExtractionConfig
from ptm_core.base.errors import PTMError
from ptm_core.models.precision import PRECISION_LABELS, autocast, pre_logits, precisions_to_try
from ptm_core.models.openvino import RuntimeSwitch, check_runtime

log = logging.getLogger(__name__)
# Images per timed call, whatever the run's batch size (the choice is kept per model and image size): enough for a
# steady rate, few enough to keep a calibration to seconds.
CALIBRATION_BATCH = 16
NUMERICS_ORDER = ("fp32", "bf16", "bf16-openvino")  # a cached entry is looked for in this order: fp32 first
ProgressFn = Callable[[float, str], None]


def runtimes_to_try(name: str, device: torch.device, layer: str) -> list[str]:
    """'torch', and 'openvino' where it can run (a CPU, pre-logit features, installed); explicit ones are checked."""
    check_runtime(name)
    here = device.type == "cpu" and layer == "pre_logits"
    if name == "openvino":
        if not openvino_runtime.available():
            raise PTMError(f"--runtime openvino needs OpenVINO: {openvino_runtime.INSTALL}")
        if not here:
            raise PTMError(f"OpenVINO runs pre-logit features on the CPU; use --runtime torch for {device.type} "
                           f"or layer '{layer}'.")
        return ["openvino"]
    if name == "auto" and here and openvino_runtime.available():
        return ["torch", "openvino"]
    return ["torch"]


def candidates(config: ExtractionConfig, device: torch.device) -> list[Pair]:
    """Every (runtime, precision) pair this run may use on this machine."""
    pairs = [Pair(runtime, precision) for runtime in runtimes_to_try(config.runtime, device, config.layer)
             for precision in precisions_to_try(config.precision, device, runtime)
             if not (runtime == "openvino" and precision == "bf16" and not capabilities().openvino_bf16)]
    if not pairs:  # only an explicit --runtime openvino --precision bf16 gets here
        raise PTMError("OpenVINO computes bf16 only on a CPU with native bf16 (AVX512_BF16 or AMX), and this one "
                       "has none; use --precision fp32, or --runtime torch (bf16 emulated, slow).")
    return pairs


def numerics_to_look_up(pairs: list[Pair]) -> list[str]:
    """The feature keys' precision parts under which features of any of `pairs` may already be cached."""
    return sorted({p.numerics for p in pairs}, key=NUMERICS_ORDER.index)


@dataclass
class ExtractionPath:
    pair: Pair  # what computes the features (PyTorch may stand in for OpenVINO fp32 until it is ready)
    how: str  # "the only candidate", "measured" or "cached"
    rates: dict[Pair, float]  # the measured img/s of each candidate ({} when there was one)
    switch: RuntimeSwitch | None = None

    def runtime(self, first_row: int) -> str:
        """'torch', 'openvino' or 'torch+openvino' (PyTorch until OpenVINO took over); `first_row`: rows resumed."""
        return self.switch.describe(first_row) if self.switch is not None else "torch"

    def label(self, first_row: int) -> str:
        """What the UI shows beside img/s: the precision, and OpenVINO where it computed these features."""
        runtime = self.runtime(first_row)
        if runtime == "torch":
            return PRECISION_LABELS[self.pair.precision]
        label = f"{self.pair.precision}, OpenVINO"
        return label if runtime == "openvino" else f"{label} after the first {self.switch.from_row:,} images (PyTorch)"

    def meta(self, first_row: int) -> dict:
        return {"precision": self.pair.precision, "runtime": self.runtime(first_row),
                "precision_label": self.label(first_row), "numerics": self.pair.numerics,
                "openvino_precision": self.switch.inference_precision if self.switch is not None else None,
                "openvino_from": self.switch.from_row if self.switch is not None else None,
                "path_choice": calibration.describe(self.rates, self.pair, self.how),
                "path_rates": {p.name: round(r, 1) for p, r in self.rates.items()}}


def plan(config: ExtractionConfig, device: torch.device, backbone: BackboneConfig, loaded, model: nn.Module,
         input_size: tuple[int, ...], n: int, pairs: list[Pair], progress: ProgressFn | None = None
         ) -> ExtractionPath:
    """The pair a run of `n` images uses (measured where several are ready) and OpenVINO's switch for it.

    `loaded`: the LoadedBackbone (its unfolded model is what OpenVINO converts); `model`: the inference model.
    """
    converted = openvino_runtime.is_converted(backbone.name, loaded.identity)
    if config.runtime == "openvino" and not converted:
        if progress is not None:
            progress(0.0, M_("converting the model for OpenVINO (once per model and weights)"))
        _convert_now(loaded.model, backbone, loaded.identity, input_size)
        converted = True
    ready = [p for p in pairs if p.runtime == "torch" or converted]
    rates, how = {}, "the only candidate"
    if len(ready) > 1:
        if progress is not None:
            progress(0.0, M_("measuring which runtime and precision is fastest here (once per model and size)"))
        make_runs = functools.partial(_runs, model, device, input_size, config, ready, backbone, loaded.identity)
        shape = [list(input_size), CALIBRATION_BATCH]
        rates, how = calibration.calibrated("extract", backbone.name, shape, ready, make_runs)
    chosen = calibration.choose(rates) if rates else ready[0]
    switch = _switch(config, chosen, pairs, converted, backbone, loaded, input_size, n)
    return ExtractionPath(chosen, how, rates, switch)


def _switch(config: ExtractionConfig, chosen: Pair, pairs: list[Pair], converted: bool, backbone: BackboneConfig,
            loaded, input_size: tuple[int, ...], n: int) -> RuntimeSwitch | None:
    if chosen.runtime == "openvino":  # PyTorch may stand in while it compiles only where it gives the same numbers
        wait = config.runtime == "openvino" or chosen.precision != "fp32"
        return RuntimeSwitch(loaded.model, backbone, loaded.identity, input_size, wait=wait,
                             precision=chosen.precision)
    work = n * (input_size[-1] / 128) ** 2
    if converted or work < openvino_runtime.WORTH_CONVERTING or not any(p.runtime == "openvino" for p in pairs):
        return None
    if chosen.precision == "fp32":  # converted beside the run, and taking over at the next batch
        return RuntimeSwitch(loaded.model, backbone, loaded.identity, input_size, wait=False)
    openvino_runtime.convert_later(backbone, loaded.identity)  # bf16 numbers differ: ready for the next run
    return None


def _convert_now(model: nn.Module, backbone: BackboneConfig, identity: str, input_size: tuple[int, ...]) -> None:
    try:
        openvino_runtime.convert(copy.deepcopy(model), backbone.name, identity, input_size)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise PTMError(f"OpenVINO could not convert {backbone.name} ({type(exc).__name__}: {first}); "
                       f"use --runtime torch.") from None


def _torch_run(model: nn.Module, batch: torch.Tensor, precision: str) -> None:
    with autocast(precision, batch.device):
        pre_logits(model, batch).cpu()  # .cpu(): a GPU's work is finished inside the timing


def _runs(model: nn.Module, device: torch.device, input_size: tuple[int, ...], config: ExtractionConfig,
          ready: list[Pair], backbone: BackboneConfig, identity: str) -> tuple[dict[Pair, Callable], int]:
    """A call per ready pair, each embedding the same seeded batch of `CALIBRATION_BATCH` images."""
    batch = torch.randn(CALIBRATION_BATCH, *input_size, generator=torch.Generator().manual_seed(0))
    batch = batch.to(device).contiguous(memory_format=torch.channels_last)
    model = model.to(device=device, memory_format=torch.channels_last)
    runs: dict[Pair, Callable] = {}
    for pair in ready:
        if pair.runtime == "torch":
            runs[pair] = functools.partial(_torch_run, model, batch, pair.precision)
            continue
        try:
            path = openvino_runtime.ir_path(backbone.name, identity)
            runs[pair] = functools.partial(openvino_runtime.runner(path, pair.precision), batch)
        except PTMError as exc:  # OpenVINO would not compile it as asked: no candidate
            if config.runtime == "openvino":
                raise
            log.warning("OpenVINO %s left out of the measurement: %s", pair.precision, exc)
    return runs, CALIBRATION_BATCH

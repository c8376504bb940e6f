"""OpenVINO as a CPU runtime for feature extraction: the same pre-logit features, several times faster.

PyTorch's eager CPU kernels run a network of many small depthwise convolutions one op at a time; OpenVINO
compiles the graph with fused kernels for the CPU it runs on (speeds: the extraction rows of
benchmarks/RESULTS.md). Its precision is always set, never left to the plugin: on a CPU with native bf16 the
CPU plugin's default `INFERENCE_PRECISION_HINT` is bf16, which silently gave bf16 features under an fp32 label
(and the fp32 cache key). fp32 is compiled as f32 (features equal to PyTorch's to 1e-5), bf16 as bf16, and the
compiled model's own setting is read back and recorded.

Converting takes seconds (a TorchScript trace read by OpenVINO's PyTorch frontend; the one-off conversion is
in the extraction rows' notes of benchmarks/RESULTS.md), so a model is converted once per weights, with a
dynamic batch and image size, and kept in the data directory (`openvino/`).
`ovc`'s `convert_model` is not used: it sends usage telemetry unless a user opted out; the frontend it
calls does not. The IR is saved to a temporary name and renamed, the `.xml` last: an `.xml` is complete.
"""
from __future__ import annotations

import copy
import functools
import logging
import json
import os
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ptm_core.runs.artifacts import artifact_dir
from ptm_core.base.configs import BackboneConfig, stable_hash
from ptm_core.base.errors import PTMError
from ptm_core.base.native_exit import native_lock

log = logging.getLogger(__name__)
RUNTIMES = ("auto", "torch", "openvino")
# `auto` converts a model not converted before only for a run worth it: n * (size / 128)^2 images of work.
# 2,000 at 128 px took PyTorch about twice the conversion on the 2-core dev box; smaller runs use PyTorch (and
# convert nothing).
WORTH_CONVERTING = 2_000
INSTALL = "pip install openvino==2026.4.1"
_converting = threading.Lock()  # one conversion at a time in this process
_in_child = threading.Lock()  # one child conversion at a time (a warm-up and a job may both ask for one)
_busy = native_lock(depth=1)  # held while a thread of ours is inside OpenVINO (base/native_exit)
_compiling = threading.Lock()
_compiled: dict[tuple[str, str], "Runner"] = {}  # (IR path, precision) -> its runner, compiled in this process
HINTS = {"fp32": "f32", "bf16": "bf16"}  # our precision names -> OpenVINO's INFERENCE_PRECISION_HINT


@functools.lru_cache(maxsize=1)
def available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def check_runtime(name: str) -> str:
    if name not in RUNTIMES:
        raise PTMError(f"Unknown runtime '{name}'; use one of {', '.join(RUNTIMES)}.")
    return name


class _PreLogits(nn.Module):
    """The features the torch path returns, as one module to trace."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True).flatten(1)


def ir_path(model_name: str, identity: str) -> Path:
    import openvino

    return artifact_dir("openvino") / f"{stable_hash([model_name, identity, 'pre_logits', openvino.__version__])}.xml"


def is_converted(model_name: str, identity: str) -> bool:
    return available() and ir_path(model_name, identity).exists()


def convert(model: nn.Module, model_name: str, identity: str, input_size: tuple[int, ...]) -> Path:
    """The IR of `model`'s pre-logit features (converted now unless it was before); `model` is not changed."""
    from openvino import PartialShape, save_model
    from openvino.frontend import FrontEndManager
    from openvino.frontend.pytorch.ts_decoder import TorchScriptPythonDecoder

    path = ir_path(model_name, identity)
    with _converting:
        if path.exists():
            return path
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit.trace's deprecation: the frontend's call
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            # No check_trace re-run (a large share of the conversion): the tests compare the features with PyTorch's.
            decoder = TorchScriptPythonDecoder(_PreLogits(model).eval(), example_input=(torch.zeros(2, *input_size),),
                                               trace_kwargs={"check_trace": False})
        frontend = FrontEndManager().load_by_framework("pytorch")
        loaded = frontend.load(decoder)
        loaded.set_partial_shape(loaded.get_inputs()[0], PartialShape([-1, input_size[0], -1, -1]))
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".converting-") as tmp:
            save_model(frontend.convert(loaded), Path(tmp) / "model.xml", compress_to_fp16=False)
            os.replace(Path(tmp) / "model.bin", path.with_suffix(".bin"))
            os.replace(Path(tmp) / "model.xml", path)
    return path


def convert_in_child(backbone: BackboneConfig, identity: str) -> Path:
    """`convert` in a child process, as background conversions run: tracing in the app's process would hold
    the GIL for seconds beside the user's work, and a conversion still inside OpenVINO's C++ code when the
    process exits (a server stopped, a test session ending) aborts it. One at a time per process."""
    path = ir_path(backbone.name, identity)
    with _in_child:
        if path.exists():
            return path
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
        proc = subprocess.run([sys.executable, "-m", "ptm_core.models.openvino", json.dumps(backbone.to_dict())],
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not path.exists():
            lines = [line for line in proc.stderr.splitlines() if line.strip()]
            raise RuntimeError(lines[-1] if lines else f"the conversion process exited with {proc.returncode}")
    return path


def _child(argv: list[str]) -> None:
    from ptm_core.models.weights import load_backbone

    backbone = BackboneConfig(**json.loads(argv[0]))
    loaded = load_backbone(backbone)
    print(convert(loaded.model, backbone.name, loaded.identity, (3, 224, 224)))


class Runner:
    """A compiled IR: a batch of normalised images (N x C x H x W) -> N x D float32 features.

    `inference_precision` is what the compiled model reports it computes in ('f32' or 'bf16'), read back
    after compiling rather than assumed from what was asked."""

    def __init__(self, compiled, inference_precision: str):
        self.compiled, self.inference_precision = compiled, inference_precision

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        with _busy:
            return np.asarray(self.compiled(batch.contiguous().numpy())[0], dtype=np.float32)


def runner(path: Path, precision: str = "fp32") -> Runner:
    """`path`'s IR compiled for this CPU in `precision` ('fp32' or 'bf16'); once per IR, precision and process
    (a process's first compile also loads the plugin)."""
    with _compiling:
        if (str(path), precision) not in _compiled:
            _compiled[str(path), precision] = _compile(path, precision)
        return _compiled[str(path), precision]


def compiled_runner(path: Path, precision: str = "fp32") -> Runner | None:
    """The runner of an IR this process has compiled already in `precision`, else None (without compiling)."""
    return _compiled.get((str(path), precision))


def _compile(path: Path, precision: str) -> Runner:
    from openvino import Core

    with _busy:
        core = Core()
        # LATENCY: one stream using every core for each batch. THROUGHPUT splits the cores into streams, which
        # only pays with several requests in flight: one synchronous batch at a time ran on one core.
        compiled = core.compile_model(core.read_model(path), "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                                     "INFERENCE_PRECISION_HINT": HINTS[precision]})
        used = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
    if used != HINTS[precision]:  # the plugin chose otherwise: the features would not be what the label says
        raise PTMError(f"OpenVINO compiled {Path(path).name} in {used}, not the {precision} asked for; "
                       f"use --runtime torch.")
    return Runner(compiled, used)


class RuntimeSwitch:
    """Gives extraction the OpenVINO runner once it is ready; PyTorch runs the batches before that.

    A model this process has compiled is used at once. Otherwise, with `wait` (an explicit `--runtime
    openvino`) conversion and compilation run first and a failure is an error; without it (`auto`) they run
    beside the extraction (the conversion in a child process; a converted model is only compiled), which
    switches over at the next batch, and a failure only means the run stays on PyTorch. Only a run whose
    PyTorch batches give the same numbers may switch over (fp32: see calibration.Pair.numerics).
    """

    def __init__(self, model: nn.Module, backbone: BackboneConfig, identity: str, input_size: tuple[int, ...],
                 wait: bool, precision: str = "fp32"):
        self.model_name, self.precision = backbone.name, precision
        self.from_row: int | None = None  # the first image OpenVINO computed
        self.error: str | None = None
        self._runner: Runner | None = None
        path = ir_path(backbone.name, identity)
        ready = compiled_runner(path, precision) if is_converted(backbone.name, identity) else None
        if ready is not None:
            self._runner = ready
        elif wait:
            try:
                self._runner = runner(convert(copy.deepcopy(model), backbone.name, identity, input_size), precision)
            except PTMError:
                raise
            except Exception as exc:
                raise PTMError(f"OpenVINO could not convert {backbone.name} ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''}); use --runtime torch.") from None
        else:  # converting, or compiling a converted model (a second or so): PyTorch starts meanwhile
            threading.Thread(target=self._prepare, args=(backbone, identity), name="openvino-convert",
                             daemon=True).start()

    def _prepare(self, backbone: BackboneConfig, identity: str) -> None:
        try:
            self._runner = runner(convert_in_child(backbone, identity), self.precision)
        except Exception as exc:  # auto: the run goes on with PyTorch, and says so
            self.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            log.warning("OpenVINO conversion of %s failed, extracting with PyTorch: %s", self.model_name, self.error)

    @property
    def pending(self) -> bool:
        """True while OpenVINO is still being prepared beside the run (its pace will change when it is ready)."""
        return self._runner is None and self.error is None

    @property
    def inference_precision(self) -> str | None:
        """What OpenVINO computed in, as its compiled model reports it ('f32', 'bf16'); None before it ran."""
        return self._runner.inference_precision if self._runner is not None and self.from_row is not None else None

    def __call__(self, done: int) -> Callable[[torch.Tensor], np.ndarray] | None:
        """The runner for the batch starting at row `done` (None: PyTorch's turn)."""
        if self._runner is not None and self.from_row is None:
            self.from_row = done
        return self._runner

    def describe(self, first_row: int) -> str:
        """'openvino' (every image computed here), 'torch' or 'torch+openvino'; `first_row`: rows resumed."""
        if self.from_row is None:
            return "torch"
        return "openvino" if self.from_row <= first_row else "torch+openvino"


def convert_later(backbone: BackboneConfig, identity: str) -> None:
    """Convert `backbone` in a child process beside whatever runs now, for a later run (nothing switches over)."""
    def work() -> None:
        try:
            convert_in_child(backbone, identity)
        except Exception as exc:
            log.warning("OpenVINO conversion of %s failed: %s", backbone.name, exc)
    threading.Thread(target=work, name="openvino-convert", daemon=True).start()


if __name__ == "__main__":  # a background conversion: python -m ptm_core.models.openvino BACKBONE_JSON
    _child(sys.argv[1:])
